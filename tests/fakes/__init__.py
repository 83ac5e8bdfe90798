"""In-process fakes of the services Amparo talks to (loopback HTTP servers for tests)."""
