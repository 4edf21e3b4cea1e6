// The overview refreshes its figures every few seconds.
(function () {
  "use strict";
  var target = document.getElementById("overview");
  function refresh() {
    fetch("/overview/live", {cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { target.innerHTML = html; })
      .catch(function () {})
      .then(function () { setTimeout(refresh, 5000); });
  }
  setTimeout(refresh, 5000);
})();
