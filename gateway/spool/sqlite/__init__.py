"""The embedded spool (`sqlite:///path`): one SQLite file shared by a machine's worker processes.

`spool.py` is the Spool protocol over the file; `writer.py` the thread that runs every write
in group commits; `tables.py` what each call does to the rows; `keylog.py` the dedupe keys;
`schema.py` the tables and the migrations of earlier versions' files.
"""

from gateway.spool.sqlite.spool import SqliteSpool

__all__ = ["SqliteSpool"]
