"""Orders fulfilled outside Instacart, on their way to `POST /v2/ian/order/log`.

`rules.py` is the order-log document's rules (validation, the dedupe key, the
three-day limit); `intake.py` takes orders server to server at `POST /v1/orders`;
`importer.py` is the `ian-gateway orders import` client that backfills a file.
"""
