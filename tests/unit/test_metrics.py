import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from menura import metrics


def samples(body: bytes) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_observe_then_render_single_process(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    op = "test-get-profiles-single"
    metrics.observe_request(op, "get", 200, 0.004)
    metrics.observe_request(op, "GET", 200, 0.2)
    metrics.observe_request(op, "GET", 429, 0.0005)
    metrics.QUEUE_DEPTH.labels(kind="test-email").set(7)

    body, content_type = metrics.render_metrics()
    assert content_type.startswith("text/plain")
    got = samples(body)
    req = "menura_http_requests_total"
    assert got[(req, frozenset({"operation": op, "method": "GET", "status": "200"}.items()))] == 2
    assert got[(req, frozenset({"operation": op, "method": "GET", "status": "429"}.items()))] == 1
    lat = "menura_http_request_duration_seconds"
    assert got[(lat + "_count", frozenset({"operation": op}.items()))] == 3
    assert got[(lat + "_bucket", frozenset({"operation": op, "le": "0.001"}.items()))] == 1
    assert got[(lat + "_bucket", frozenset({"operation": op, "le": "0.005"}.items()))] == 2
    assert got[(lat + "_bucket", frozenset({"operation": op, "le": "10.0"}.items()))] == 3
    assert got[("menura_work_queue_depth", frozenset({"kind": "test-email"}.items()))] == 7


def test_multiprocess_mode_merges_processes(tmp_path: Path):
    """Two processes record into one PROMETHEUS_MULTIPROC_DIR; a third renders the sum."""
    src = str(Path(metrics.__file__).resolve().parents[1])
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": src}
    record = textwrap.dedent(
        """
        import sys
        from menura import metrics
        metrics.observe_request("get-lists", "GET", 200, 0.02)
        metrics.QUEUE_DEPTH.labels(kind="sms").set(float(sys.argv[1]))
        """
    )
    for depth in ("3", "5"):
        subprocess.run([sys.executable, "-c", record, depth], env=env, check=True, timeout=60)
    render = (
        "import sys; from menura import metrics; "
        "body, ct = metrics.render_metrics(); sys.stdout.write(body.decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", render], env=env, check=True, capture_output=True, timeout=60
    ).stdout
    got = samples(out)
    key = frozenset({"operation": "get-lists", "method": "GET", "status": "200"}.items())
    assert got[("menura_http_requests_total", key)] == 2
    lat = "menura_http_request_duration_seconds_count"
    assert got[(lat, frozenset({"operation": "get-lists"}.items()))] == 2
    # livemostrecent: one value, the one written last
    assert got[("menura_work_queue_depth", frozenset({"kind": "sms"}.items()))] == 5
