// The spectator page: every update from the server replaces the regions it names.
(function () {
  "use strict";
  var room = document.querySelector(".room");
  var live = document.getElementById("live");
  var code = room.dataset.code;
  var source = new EventSource("/rooms/" + code + "/events");
  function show(text, state) { live.textContent = text; live.className = "live " + state; }
  source.addEventListener("open", function () { show("live", "on"); });
  source.addEventListener("room", function (e) {
    var parts = JSON.parse(e.data);
    Object.keys(parts).forEach(function (id) {
      if (id === "phase") { room.dataset.phase = parts.phase; return; }
      var el = document.getElementById(id);
      if (el) { el.innerHTML = parts[id]; }
    });
    show("live", "on");
  });
  source.addEventListener("closed", function (e) {
    var reason = JSON.parse(e.data).reason;
    source.close();
    room.dataset.phase = "closed";
    var status = document.getElementById("status");
    status.innerHTML = '<div class="phase over">Room closed</div><div class="closed-note"></div>';
    status.querySelector(".closed-note").textContent = "The room has ended: " + reason + ".";
    show("room closed", "off");
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) { show("disconnected", "off"); }
    else { show("reconnecting…", "off"); }
  });
})();
