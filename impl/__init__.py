"""Readable reference implementations of the algorithms of the audited articles.

One package per topic, one module per algorithm; each module's docstring states the equations
it implements. Importing this package imports nothing heavy (no torch).
"""
