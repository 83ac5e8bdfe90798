"""In-process fakes of the external services Amparo's exchanges talk to (loopback only).

Each fake speaks the service's HTTP API as its client documents it, records the requests it
gets, and can be told to fail (429, 5xx, a malformed page) so tests see retries and
quarantine without reaching the real service.
"""
