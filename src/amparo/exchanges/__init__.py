"""Exchanges: hash lists shared across organisations and borders.

An *exchange* is a kind of source (``file``, ``url``, ``ncmec``, ``stopncii``,
``threatexchange``, ``amparo`` for a federated peer); a *collaboration* is one configured use
of it feeding a bank. The runner fetches changes since a checkpoint in committed batches
under a database lease; feeds publish banks to partners with signed pages; opinions flow
back to sources; retroactive matching re-checks recent content when new entries arrive.
"""
