"""`tenant_import.scan`, the gate in front of node_service's importer: what a folder of session folders holds,
read without following links and with size bounds; every refusal names its folder. (The import itself, into
PostgreSQL and files with real Baileys folders and node_service, is tests/e2e/test_tenant_import.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deploytool import tenant_import
from deploytool.errors import UserError

TENANTS = ["1", "2", "3"]


def session(folder: Path, me: str | None = "5511900000001:1@s.whatsapp.net", keys: int = 2) -> Path:
    folder.mkdir(parents=True)
    creds = {"noiseKey": {"private": {"type": "Buffer", "data": "c2VjcmV0"}}, "registered": me is not None}
    if me:
        creds["me"] = {"id": me}
    (folder / "creds.json").write_text(json.dumps(creds))
    for i in range(keys):
        (folder / f"pre-key-{i + 1}.json").write_text('{"public": {"type": "Buffer", "data": "AA=="}}')
    return folder


def by_folder(entries: list[tenant_import.Entry]) -> dict[str, tenant_import.Entry]:
    return {e.folder: e for e in entries}


def test_baileys_folders_map_to_tenants_with_me_and_keys(tmp_path):
    session(tmp_path / "auth" / "1", keys=3)
    (tmp_path / "auth" / "1" / ".lock").write_text('{"pid": 1}')  # node_service's own files beside the session
    (tmp_path / "auth" / "1" / ".creds.json.99.1.tmp").write_text("{half")
    (tmp_path / "notes.txt").write_text("a file beside the folders")
    found = by_folder(tenant_import.scan(tmp_path, TENANTS, "dev"))
    assert list(found) == ["auth/1"]
    entry = found["auth/1"]
    assert (entry.kind, entry.tenant, entry.me, entry.keys) == ("session", "1", "5511900000001:1@s.whatsapp.net", 3)
    assert sorted(entry.files) == ["creds.json", "pre-key-1.json", "pre-key-2.json", "pre-key-3.json"]
    assert "c2VjcmV0" not in repr(entry)  # the bytes never show in a repr


def test_whatsapp_web_js_profiles_are_listed_for_one_scan(tmp_path):
    (tmp_path / ".wwebjs_auth_user_2" / "session-ylada_bot_user_2").mkdir(parents=True)
    (tmp_path / ".wwebjs_auth_5001" / "session-ylada_bot_5001").mkdir(parents=True)
    (tmp_path / ".wwebjs_cache_5001").mkdir()
    found = by_folder(tenant_import.scan(tmp_path, TENANTS, "dev"))
    assert sorted(found) == [".wwebjs_auth_5001", ".wwebjs_auth_user_2"]
    assert found[".wwebjs_auth_user_2"].kind == "wwebjs" and found[".wwebjs_auth_user_2"].tenant == "2"
    assert found[".wwebjs_auth_5001"].tenant is None  # a port names no tenant
    assert not any(e.files for e in found.values())


def test_each_bad_folder_is_refused_by_name(tmp_path):
    session(tmp_path / "1")
    os.mkfifo(tmp_path / "1" / "pre-key-9.json")  # would hang a reader
    session(tmp_path / "2")
    (tmp_path / "2" / "notes.txt").write_text("x")
    session(tmp_path / "3")
    (tmp_path / "3" / "pre-key-7.json").mkdir()
    session(tmp_path / "x y")
    session(tmp_path / "4")
    (tmp_path / "empty").mkdir()
    found = by_folder(tenant_import.scan(tmp_path, TENANTS, "dev"))
    assert "named pipe" in found["1"].detail
    assert "notes.txt: not a file of a Baileys auth folder" in found["2"].detail
    assert "pre-key-7.json" in found["3"].detail and "folder" in found["3"].detail
    assert "not a valid tenant id" in found["x y"].detail
    assert found["4"].detail == "maps to no tenant of dev (tenants: 1, 2, 3)"
    assert all(found[name].kind == "refused" and not found[name].files for name in ("1", "2", "3", "x y", "4"))
    assert "empty" not in found  # no tenant's name, no session: not a session folder


def test_a_half_written_or_unpaired_folder_is_not_imported(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "pre-key-1.json").write_text("{}")  # keys, no creds: half-written
    session(tmp_path / "2", me=None)
    found = by_folder(tenant_import.scan(tmp_path, TENANTS, "dev"))
    assert found["1"].kind == "refused" and "no creds.json" in found["1"].detail
    assert found["2"].kind == "ignored" and "no linked device" in found["2"].detail


def test_a_second_folder_for_one_tenant_refuses_both(tmp_path):
    session(tmp_path / "1")
    session(tmp_path / "whatsapp-1" / "1")
    session(tmp_path / "whatsapp-1" / "2")
    found = by_folder(tenant_import.scan(tmp_path, TENANTS, "dev"))
    assert found["1"].kind == found["whatsapp-1/1"].kind == "refused"
    assert "a second folder for tenant 1 (also whatsapp-1/1)" in found["1"].detail
    assert found["whatsapp-1/2"].kind == "session"


def test_links_are_refused_not_followed(tmp_path):
    outside = session(tmp_path / "outside")
    source = tmp_path / "auth"
    session(source / "2")
    (source / "1").symlink_to(outside)
    (source / "2" / "session-5511.0.json").symlink_to(outside / "creds.json")
    session(source / "3")
    (source / "3" / "pre-key-1.json").unlink()
    (source / "3" / "pre-key-1.json").symlink_to(source / "2" / "pre-key-1.json")  # inside DIR: not followed either
    found = by_folder(tenant_import.scan(source, TENANTS, "dev"))
    assert "symbolic link" in found["1"].detail and "outside the folder" in found["1"].detail
    assert "session-5511.0.json" in found["2"].detail and "outside the folder" in found["2"].detail
    assert "inside the folder" in found["3"].detail
    assert all(e.kind == "refused" for e in found.values())


def test_a_huge_file_is_refused_without_reading_it(tmp_path):
    session(tmp_path / "1")
    with (tmp_path / "1" / "pre-key-1.json").open("r+b") as handle:
        handle.truncate(1024**3)  # sparse: 1 GB on paper
    found = by_folder(tenant_import.scan(tmp_path, TENANTS, "dev"))
    assert found["1"].kind == "refused"
    assert "pre-key-1.json: 1,073,741,824 bytes, larger than" in found["1"].detail


def test_the_source_must_be_a_folder(tmp_path):
    with pytest.raises(UserError, match="is not a folder"):
        tenant_import.scan(tmp_path / "missing", TENANTS, "dev")


def test_a_session_folder_given_as_the_source_is_named(make_project, tmp_path, capsys):
    from deploytool.cli import main

    spec = make_project({"dev": "database: {engine: sqlite}\ntargets: [local]\n"})
    (tmp_path / "node_service" / "src" / "store").mkdir(parents=True)
    (tmp_path / "node_service" / "src" / "store" / "import.js").write_text("// not run: nothing to import\n")
    one = session(tmp_path / "old" / "1")
    assert main(["--spec", str(spec), "tenants", "import", "dev", "--from", str(one.parent)]) == 2
    assert "deploytool-manifest.json: not found; run `deploytool render" in capsys.readouterr().err  # the env files
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    assert main(["--spec", str(spec), "tenants", "import", "dev", "--from", str(one)]) == 2
    assert "is one session folder itself" in capsys.readouterr().err


def test_exactly_one_source(make_project, tmp_path, capsys):
    from deploytool.cli import main

    spec = make_project({"dev": "database: {engine: sqlite}\ntargets: [local]\n"})
    assert main(["--spec", str(spec), "tenants", "import", "dev"]) == 2
    assert main(["--spec", str(spec), "tenants", "import", "dev", "--from", str(tmp_path), "--from-volume", "v"]) == 2
    assert capsys.readouterr().err.count("exactly one of --from DIR and --from-volume NAME") == 2


def test_rows_come_in_tenant_order(tmp_path):
    for tenant in ("10", "2", "1"):
        session(tmp_path / tenant)
    assert [e.folder for e in tenant_import.scan(tmp_path, ["1", "2", "10"], "dev")] == ["1", "2", "10"]
