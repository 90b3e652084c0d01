"""`menura templates import/export`: a hybrid HTML file goes in and comes back out byte for byte,
through the CLI, the API and the official SDK alike."""

from __future__ import annotations

import json

from click.testing import CliRunner

from menura.cli import main
from tests.e2e.template_fixtures import HYBRID_HTML


def _run(args, server):
    env = {"MENURA_DATABASE_URL": server.settings.resolved_database_url,
           "MENURA_DATA_DIR": str(server.settings.data_dir)}
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_hybrid_file_round_trips_byte_for_byte(server, account, sdk, tmp_path):
    source = tmp_path / "spring-sale.html"
    source.write_bytes(HYBRID_HTML.encode("utf-8"))
    imported = _run(["templates", "import", str(source), "--hybrid", "--account", account.id, "--json"], server)
    assert imported.exit_code == 0, imported.output
    made = json.loads(imported.output)
    assert made["name"] == "spring-sale" and made["editor_type"] == "USER_DRAGGABLE" and made["regions"] == 2

    via_sdk = sdk.Templates.get_template(made["template_id"])
    assert via_sdk.data.attributes.html.encode("utf-8") == source.read_bytes()
    assert via_sdk.data.attributes.editor_type == "USER_DRAGGABLE"

    out = tmp_path / "exported.html"
    exported = _run(["templates", "export", made["template_id"], "--account", account.id, "-o", str(out)], server)
    assert exported.exit_code == 0, exported.output
    assert out.read_bytes() == source.read_bytes()
    to_stdout = _run(["templates", "export", made["template_id"], "--account", account.id], server)
    assert to_stdout.stdout_bytes == source.read_bytes()


def test_import_checks(server, account, tmp_path):
    plain = tmp_path / "plain.html"
    plain.write_text("<p>{{ first_name }}</p>")
    not_hybrid = _run(["templates", "import", str(plain), "--hybrid", "--account", account.id], server)
    assert not_hybrid.exit_code != 0 and "editable region" in not_hybrid.output
    code = _run(["templates", "import", str(plain), "--name", "Plain", "--account", account.id, "--json"], server)
    assert json.loads(code.output)["editor_type"] == "CODE"
    broken = tmp_path / "broken.html"
    broken.write_text("<p>\n{% if %}</p>")
    failed = _run(["templates", "import", str(broken), "--account", account.id], server)
    assert failed.exit_code != 0 and "line 2" in failed.output
    binary = tmp_path / "latin1.html"
    binary.write_bytes(b"<p>\xe9</p>")
    assert _run(["templates", "import", str(binary), "--account", account.id], server).exit_code != 0
    missing = _run(["templates", "export", "nope00", "--account", account.id], server)
    assert missing.exit_code != 0 and "does not exist" in missing.output
