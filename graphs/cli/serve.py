"""`xthink serve`: the whole agent behind an OpenAI-compatible endpoint (graphs/server/openai_app.py)."""

from __future__ import annotations

import logging
import os

import typer

from graphs.cli import flags
from graphs.cli.common import EXIT_INPUT, EXIT_MODEL, check_image_settings, fail, start_telemetry
from graphs.server.serve_limits import ServeLimits

DEFAULTS = ServeLimits()  # the flags' defaults are the server's own


def serve_command(
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0 for every interface)"),
    port: int = typer.Option(8000, help="port"),
    reasoner: str | None = flags.reasoner(),
    perceiver: str | None = flags.perceiver(),
    pair: str | None = flags.pair(),
    api_key: str | None = typer.Option(None, "--api-key", help="required Bearer key (or XTHINK_SERVE_API_KEY)"),
    max_concurrent: int = typer.Option(DEFAULTS.max_concurrent, "--max-concurrent", min=1,
                                       help="runs at once; more wait in the queue"),
    max_queue: int | None = typer.Option(None, "--max-queue", min=0,
                                         help="requests waiting for a run slot; more get 429 "
                                         "[default: 4 x --max-concurrent]"),
    queue_timeout: float = typer.Option(DEFAULTS.queue_timeout_s, "--queue-timeout", min=0, max=86_400,
                                        help="seconds a request may wait for a run slot before a 429"),
    timeout: float = typer.Option(DEFAULTS.timeout_s, "--timeout", min=1, max=86_400,
                                  help="seconds a request may run; then 504 and the run is stopped"),
    max_images: int = typer.Option(DEFAULTS.max_images, "--max-images", min=1, help="images per request"),
    max_pixels: int = typer.Option(DEFAULTS.max_pixels, "--max-pixels", min=1, help="pixels per image (at most "
                                   "XTHINK_MAX_PIXELS_CAP when set)"),
    max_body_mb: float = typer.Option(DEFAULTS.max_body_bytes / 2**20, "--max-body-mb", min=0.001, max=4096,
                                      help="request body size"),
    reasoner_cache_mb: float = flags.engine("reasoner_cache_mb", "in-process KV reuse across turns, MB (0: off)",
                                             min=0),
    perceiver_cache_mb: float = flags.engine("perceiver_cache_mb", "in-process image KV reuse, MB (0: off)", min=0),
    device: str = flags.device(),
    dtype: str = flags.dtype(),
    otel_endpoint: str | None = flags.otel(),
) -> None:
    """Serve /v1/chat/completions and /v1/models; the models load before the server starts listening."""
    import uvicorn

    from graphs.server.openai_app import create_app
    from tools.backends.options import EngineOptions

    check_image_settings()
    start_telemetry(otel_endpoint)
    engine = EngineOptions(reasoner_cache_mb=reasoner_cache_mb, perceiver_cache_mb=perceiver_cache_mb)
    caps, agent = _load((pair, reasoner, perceiver), device, dtype, engine)
    limits = ServeLimits(max_body_bytes=int(max_body_mb * 1024 * 1024), max_images=max_images,
                         max_pixels=min(max_pixels, caps.max_pixels), max_concurrent=max_concurrent, timeout_s=timeout,
                         caps=caps, max_queue=4 * max_concurrent if max_queue is None else max_queue,
                         queue_timeout_s=queue_timeout)  # fmt: skip
    key = _api_key(api_key, host)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(agent, limits, key)
    print(f"extract-think serving on http://{host}:{port}/v1 (models: GET /v1/models)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _load(models: tuple, device: str, dtype: str, engine):
    """The operator's caps and the agent, its models loaded before the server listens: a bad cap, model
    string or model is one line and its exit code, never a server that fails its first request."""
    from agent.setting_caps import SettingCaps
    from graphs.api import ExtractThink, InputError, resolve_models
    from tools.backends.loading import ModelLoadError, quiet_transformers
    from tools.backends.spec import ModelSpecError
    from tools.long_lived import freeze_new_models

    try:
        caps = SettingCaps.from_env()  # XTHINK_*_CAP, the same caps a LangGraph run's context gets
        reasoner, perceiver = resolve_models(*models)
        agent = ExtractThink(reasoner=reasoner, perceiver=perceiver, device=device, dtype=dtype, engine=engine)
        quiet_transformers()
        agent.load_models("iterative")
        freeze_new_models()  # the models live as long as the server: out of the GC's full passes
    except (InputError, ModelSpecError) as exc:
        fail(str(exc), EXIT_INPUT)
    except ModelLoadError as exc:
        fail(str(exc), EXIT_MODEL)
    return caps, agent


def _api_key(flag: str | None, host: str) -> str | None:
    """--api-key, else XTHINK_SERVE_API_KEY; serving beyond this machine without one is said out loud."""
    key = flag or os.environ.get("XTHINK_SERVE_API_KEY") or None
    if key is None and host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {host} without an API key; anyone who can reach it can run the models "
              "(set --api-key or XTHINK_SERVE_API_KEY)", flush=True)
    return key
