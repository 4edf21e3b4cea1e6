"""Several ``lgmp serve`` nodes acting as one server: code letters leased over Redis
(``leases``, ``registry``, ``member``), routing tables (``plan``) and ``lgmp rooms``."""
