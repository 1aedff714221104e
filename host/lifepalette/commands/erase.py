"""`lifepalette erase`: delete a badge's stored physiology (one consent epoch or all) with a receipt.

While a hub holds the database (hub/dblock.py) the erasure goes through that hub's control socket (hub/control.py):
the hub carries it out through its own consent ledger, so its next flush cannot undo it, and its console shows
the receipt. Otherwise the erasure works on the file directly, holding the lock so no hub opens it meanwhile.
"""

from __future__ import annotations

import argparse
import sys
import time

SCRUB_WAIT_S = 30.0  # how long to wait for other readers to let go of the erased bytes
CONTROL_WAIT_S = 5.0  # how long to wait for a running hub's control socket to answer


def register(subparsers) -> None:
    p = subparsers.add_parser("erase", help="erase a badge's stored physiology and print the receipt",
                              description="Delete a badge's physiology from the hub database (one consent epoch, "
                                          "or every epoch), overwrite the freed bytes, and record an erasure "
                                          "receipt (what, when, how many rows). With a hub running on the "
                                          "database, the hub does it (and shows the receipt on its console).")
    p.add_argument("--db", required=True, help="hub database file")
    p.add_argument("--dev", type=int, required=True, metavar="N", help="device id")
    p.add_argument("--epoch", type=int, metavar="E", help="only this consent epoch (default: all epochs)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from lifepalette.hub.dblock import ERASE_ROLE, DatabaseBusy, DatabaseLock
    from lifepalette.hub.sitekey import check_dev_id
    from lifepalette.hub.store import existing_db

    dev_id = check_dev_id(args.dev)
    db = existing_db(args.db)
    lock = DatabaseLock(db, ERASE_ROLE)
    try:
        lock.acquire()
    except DatabaseBusy as busy:
        receipt = _through_the_hub(db, dev_id, args.epoch, busy)
    else:
        try:
            receipt = _directly(db, args.db, dev_id, args.epoch)
        finally:
            lock.release()
    print(json.dumps({"receipt": receipt}))
    if receipt.get("pending"):
        print("lifepalette erase: warning: the hub could not commit the erasure yet (its database refuses writes): "
              "it is recorded, shown as pending on the console and retried until it is committed", file=sys.stderr)
        return 1
    if not receipt["scrubbed"]:
        print(f"lifepalette erase: warning: another process still reads {args.db}: the erased rows are deleted, but "
              "their old bytes stay in the file until the next checkpoint (the hub retries at every flush)",
              file=sys.stderr)
        return 1
    return 0


def _directly(db, shown: str, dev_id: int, epoch: int | None) -> dict:
    from lifepalette.errors import UsageError
    from lifepalette.hub.store import Store

    store = Store(db)
    try:
        if not store.knows_device(dev_id):
            raise UsageError(f"device {dev_id} is not enrolled in {shown} and nothing is stored for it")
        if epoch is not None and not store.knows_epoch(dev_id, epoch):
            raise UsageError(f"device {dev_id} has no consent epoch {epoch} in {shown}")
        # marks the epochs erased in the same transaction
        return store.erase(dev_id, epoch, "operator", scrub_wait_s=SCRUB_WAIT_S).as_dict()
    finally:
        store.close()


def _through_the_hub(db, dev_id: int, epoch: int | None, busy: Exception) -> dict:
    from lifepalette.errors import UsageError
    from lifepalette.hub import control

    deadline = time.monotonic() + CONTROL_WAIT_S  # a hub that is starting takes the lock before it listens
    while True:
        try:
            reply = control.request(db, {"op": "erase", "dev": dev_id, "epoch": epoch})
            break
        except control.ControlUnavailable as exc:
            if time.monotonic() >= deadline:
                raise UsageError(f"{busy}, and {exc}: try again when it is done") from None
            time.sleep(0.2)
    if "error" in reply:
        error = UsageError(str(reply["error"]))
        error.exit_code = int(reply.get("exit_code", 2))
        raise error
    return reply["receipt"]
