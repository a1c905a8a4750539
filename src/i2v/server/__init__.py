"""i2v as a service: a REST job API (``app``), a persistent job store (``store``), workers that keep
models warm (``worker``) and a client (``client``). ``i2v serve`` and ``i2v worker`` run them."""
