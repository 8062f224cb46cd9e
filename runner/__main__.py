"""`make run`: starts the platform in the foreground and supervises it: a
child that dies is restarted, and one that keeps dying stops the platform.
Ctrl-C stops every child; data stays in the data folder for the next run."""

import signal
import sys
import time

from runner.stack import Ports, Stack, StackError
from runner.supervisor import CrashLoop
from server.settings import Settings


def main() -> int:
    settings = Settings()
    ports = Ports(
        envoy=settings.envoy_port,
        envoy_admin=settings.envoy_admin_port,
        webhooks=settings.webhook_port,
        webhooks_admin=settings.webhook_admin_port,
        grpc=settings.grpc_port,
        callbacks=settings.callbacks_port,
        bulk=settings.bulk_port,
        temporal=settings.temporal_port,
        temporal_ui=settings.temporal_ui_port,
        sandbox_http=settings.sandbox_http_port,
        sandbox_smtp=settings.sandbox_smtp_port,
        api_metrics=settings.api_metrics_port,
        bulk_metrics=settings.bulk_metrics_port,
        callbacks_metrics=settings.callbacks_metrics_port,
        worker_metrics=settings.worker_metrics_port,
        worker_sdk_metrics=settings.worker_sdk_metrics_port,
        webhooks_metrics=settings.webhooks_metrics_port,
    )
    stack = Stack(
        data_dir=settings.data_dir.resolve(), ports=ports, database_url=settings.database_url
    )
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    started = time.monotonic()
    try:
        stack.start(on_progress=lambda step: print(f"clarion: {step}", flush=True))
    except StackError as error:
        print(f"clarion: {error}", file=sys.stderr)
        return 1
    print(
        f"""
Clarion is up in {time.monotonic() - started:.1f} s.
  JSON API (Envoy)     {stack.api_url}/api/v1
  Signup               POST {stack.api_url}/portal/signup
  gRPC API             127.0.0.1:{ports.grpc} (bulk sends: {ports.bulk})
  Provider webhooks    {stack.webhook_url}/callbacks/{{provider}}
  Temporal UI          http://127.0.0.1:{ports.temporal_ui}
  Provider sandbox     {stack.sandbox_url}/sandbox/
  Metrics (/metrics)   API {ports.api_metrics}, bulk API {ports.bulk_metrics}, \
callbacks {ports.callbacks_metrics}, worker {ports.worker_metrics} (SDK {ports.worker_sdk_metrics}),
                       webhooks {ports.webhooks_metrics}, Temporal {ports.temporal_metrics}, \
Envoy admin {ports.envoy_admin} and {ports.webhooks_admin} (/stats/prometheus)
  Logs                 {stack.data_dir / "logs"}
Press Ctrl-C to stop.""",
        flush=True,
    )
    code = 0
    try:
        stack.supervise(lambda: stopping)
    except CrashLoop as error:
        print(f"clarion: {error}", file=sys.stderr, flush=True)
        code = 1
    print("clarion: stopping", flush=True)
    stack.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
