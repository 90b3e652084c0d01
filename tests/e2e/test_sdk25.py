"""The next SDK generation (revision 2026-10-15) against the same server."""

from __future__ import annotations

from tests.sdk25 import run_sdk25


def test_sdk25_reads_the_account(server, account):
    result = run_sdk25(account.key, server.url, """
        import klaviyo_api
        assert klaviyo.api_client.default_headers["revision"] == "2026-10-15"
        out(klaviyo.Accounts.get_accounts())
    """)
    assert result["data"][0]["id"] == account.id
