"""Fuzzing harness for the LGMP server: decoder, room/hub and network targets.

See fuzz/README.md for how to run each target and what it checks.
"""
