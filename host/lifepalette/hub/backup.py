"""Sealed hub backups: the database (a consistent online copy) and the site key, encrypted with a passphrase.

File layout (all integers big-endian):

    b"LPBACKUP" | u32 header length | header JSON (format, KDF and its parameters, salt, AEAD, chunk size)
    then chunks: u32 ciphertext length | AES-256-GCM(key, nonce = u88 chunk index | u8 last flag, aad = header)

The key comes from scrypt(passphrase, random salt), so every file has its own key and counter nonces never repeat.
Chunk 0 holds the manifest (schema version, creation time, site key, database size); the rest hold the database.
Authenticating each chunk with its index and a last-chunk flag makes reordering, truncation and trailing junk all
fail as cleanly as a wrong passphrase does: one named error, nothing written where the database lives.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from lifepalette.errors import UsageError
from lifepalette.hub import schema
from lifepalette.hub.sitekey import load_site_key

MAGIC = b"LPBACKUP"
FORMAT = 1
CHUNK = 1 << 20
SCRYPT = {"n": 1 << 15, "r": 8, "p": 1}  # 32 MiB, about 0.1 s on a desktop and well under 1 s on a Pi 4
MAX_HEADER = 4096
_LEN = struct.Struct(">I")


class BackupError(UsageError):
    """An unusable backup file or passphrase (exit 2)."""


def _derive(passphrase: bytes, salt: bytes, params: dict) -> bytes:
    return Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"]).derive(passphrase)


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _private_file(path: Path) -> BinaryIO:
    if path.exists():
        path.unlink()
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def write_backup(db: str | Path, out: str | Path, passphrase: bytes) -> dict:
    """Copy the (possibly live) database with SQLite's online backup API and seal it with the site key."""
    db, out = Path(db), Path(out)
    if not passphrase:
        raise BackupError("the passphrase is empty")
    if out.is_dir():
        raise BackupError(f"{out} is a directory")
    con = sqlite3.connect(str(db), timeout=30)
    copy = out.with_name(out.name + ".db-copy")
    try:
        version = schema.version_of(con)
        schema.check_not_newer(version, db)
        schema.copy_database(con, copy)
    finally:
        con.close()
    try:
        site_key = load_site_key(db, create=False)
        manifest = {"schema_version": version, "created_at": time.time(), "db_bytes": copy.stat().st_size,
                    "site_key": site_key.hex() if site_key else None}
        _seal(copy, out, passphrase, manifest)
    finally:
        copy.unlink(missing_ok=True)
    return {k: v for k, v in manifest.items() if k != "site_key"} | {"site_key": site_key is not None}


def _seal(copy: Path, out: Path, passphrase: bytes, manifest: dict) -> None:
    salt = os.urandom(16)
    header = json.dumps({"format": FORMAT, "kdf": "scrypt", **SCRYPT, "salt": salt.hex(), "aead": "AES-256-GCM",
                         "chunk": CHUNK}, sort_keys=True).encode()
    prefix = MAGIC + _LEN.pack(len(header)) + header
    aead = AESGCM(_derive(passphrase, salt, SCRYPT))
    tmp = out.with_name(out.name + ".tmp")
    with _private_file(tmp) as fh, open(copy, "rb") as src:
        fh.write(prefix)
        pieces = [json.dumps(manifest).encode()]
        index = 0
        while True:
            nxt = src.read(CHUNK)
            if pieces and not nxt:  # the piece in hand is the last one
                sealed = aead.encrypt(_nonce(index, True), pieces.pop(), prefix)
                fh.write(_LEN.pack(len(sealed)) + sealed)
                break
            sealed = aead.encrypt(_nonce(index, False), pieces.pop(), prefix)
            fh.write(_LEN.pack(len(sealed)) + sealed)
            pieces.append(nxt)
            index += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out)


def _read_exact(fh: BinaryIO, n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise BackupError(f"{fh.name} is truncated ({what} cut short)")
    return data


def _chunks(fh: BinaryIO, passphrase: bytes) -> Iterator[bytes]:
    """Authenticated plaintext chunks in order; raises BackupError for anything else."""
    if fh.read(len(MAGIC)) != MAGIC:
        raise BackupError(f"{fh.name} is not a Life Palette backup")
    (size,) = _LEN.unpack(_read_exact(fh, 4, "header"))
    if size > MAX_HEADER:
        raise BackupError(f"{fh.name} has a damaged header")
    header = _read_exact(fh, size, "header")
    try:
        params = json.loads(header)
        if params["format"] != FORMAT or params["kdf"] != "scrypt" or params["aead"] != "AES-256-GCM":
            raise BackupError(f"{fh.name} is a backup format this lifepalette cannot read ({params['format']})")
        aead = AESGCM(_derive(passphrase, bytes.fromhex(params["salt"]), params))
        limit = int(params["chunk"]) + 16
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{fh.name} has a damaged header ({exc})") from None
    prefix = MAGIC + _LEN.pack(size) + header
    index = 0
    while True:
        raw = fh.read(4)
        if len(raw) < 4:
            raise BackupError(f"{fh.name} is truncated (ends before its last chunk)")
        (length,) = _LEN.unpack(raw)
        if length > limit:
            raise BackupError(f"{fh.name} is damaged (chunk {index} has an impossible length)")
        sealed = _read_exact(fh, length, f"chunk {index}")
        plain, last = None, False
        for flag in (False, True):
            try:
                plain, last = aead.decrypt(_nonce(index, flag), sealed, prefix), flag
                break
            except InvalidTag:
                continue
        if plain is None:
            if index == 0:
                raise BackupError(f"wrong passphrase for {fh.name} (or the file is damaged)")
            raise BackupError(f"{fh.name} is damaged (chunk {index} fails authentication)")
        yield plain
        if last:
            if fh.read(1):
                raise BackupError(f"{fh.name} is damaged (data after its last chunk)")
            return
        index += 1


def read_backup(path: str | Path, passphrase: bytes, dest: str | Path) -> dict:
    """Decrypt `path` into a new 0600 file `dest` (the database) and return the manifest (site key as bytes)."""
    path, dest = Path(path), Path(dest)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        chunks = _chunks(fh, passphrase)
        try:
            manifest = json.loads(next(chunks))
        except (StopIteration, ValueError):
            raise BackupError(f"{path} has no readable manifest") from None
        written = 0
        with _private_file(dest) as out:
            for plain in chunks:
                out.write(plain)
                written += len(plain)
            out.flush()
            os.fsync(out.fileno())
    if written != manifest.get("db_bytes"):
        raise BackupError(f"{path} is damaged (database size {written}, manifest says {manifest.get('db_bytes')})")
    key = manifest.get("site_key")
    manifest["site_key"] = bytes.fromhex(key) if key else None
    return manifest


def restore_backup(src: str | Path, db: str | Path, passphrase: bytes) -> dict:
    """Replace `db` with the backup, after carrying out every journaled erasure the backup does not hold.

    Refused while a hub runs on `db` (its lock); holds the lock itself so no hub starts halfway. The restored file
    only takes the database's place once it is complete, migrated and erased: any failure leaves `db` untouched.
    """
    from lifepalette.hub.dblock import DatabaseLock
    from lifepalette.hub.sitekey import site_key_path
    from lifepalette.hub.store import Store

    db = Path(db)
    if db.is_dir():
        raise BackupError(f"{db} is a directory")
    with DatabaseLock(db, "lifepalette restore"):
        tmp = db.with_name(db.name + ".restoring")
        try:
            manifest = read_backup(src, passphrase, tmp)
            _check_restorable(tmp, src)
            store = Store(tmp, journal_of=db, keep_migration_backup=False)
            reapplied = store.replayed
            store.con.close()
            key, replaced = manifest["site_key"], False
            if key is not None:
                old = site_key_path(db)
                replaced = old.exists() and old.read_text().strip() != key.hex()
                with _private_file(old.with_name(old.name + ".tmp")) as fh:
                    fh.write(key.hex().encode() + b"\n")
                os.replace(old.with_name(old.name + ".tmp"), old)
            for stale in (Path(f"{db}-wal"), Path(f"{db}-shm")):  # the old file's WAL must never meet the new one
                stale.unlink(missing_ok=True)
            os.replace(tmp, db)
        finally:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                leftover.unlink(missing_ok=True)
    return {"restored": str(db), "backup_created_at": manifest["created_at"],
            "backup_schema_version": manifest["schema_version"], "schema_version": schema.CURRENT,
            "erasures_reapplied": [r.as_dict() for r in reapplied], "site_key": key is not None,
            "site_key_replaced": replaced}


def _check_restorable(path: Path, src: str | Path) -> None:
    try:
        con = sqlite3.connect(str(path))
        try:
            result = con.execute("PRAGMA integrity_check").fetchone()[0]
            version = schema.version_of(con)
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{src} holds no readable database ({exc})") from None
    if result != "ok" or version == 0:
        raise BackupError(f"{src} holds a damaged database ({result})")
    schema.check_not_newer(version, src)
