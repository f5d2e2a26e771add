"""The tests of ian-gateway: one module per module of `gateway/`, helpers in `tests.support`."""
