"""The server: a sans-IO connection per socket (``connection``) and the trio shell (``shell``)."""
