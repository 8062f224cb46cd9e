"""How long a worker told to stop (SIGTERM) lets its running activities
finish. Its own module, so the Stack can size its stop wait above it without
importing the worker."""

MAX_DRAIN_SECONDS = 25.0
