"""Code both sides of the network need.

Modules here import only the standard library unless their docstring says otherwise, so the
training harness can use them on a bare GPU box. `protocol` (pydantic) and `signing`
(cryptography) are the exceptions, and the harness never imports them.
"""
