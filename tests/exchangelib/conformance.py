"""exchangelib, a client foldertrack did not write, against `foldertrack sim`.

Usage: conformance.py EWS_URL CONTROL_URL

Sets the simulator up through its control API, then makes the calls a typical exchangelib user
makes, each checked against what Exchange answers. Prints one line per call ("ok NAME" or
"FAIL NAME: why") and a last line "N passed, M failed"; exits 1 when any failed.
"""

import json
import sys
import traceback
import urllib.request

from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    Account,
    Configuration,
    Credentials,
    FailFast,
    Message,
)
from exchangelib.errors import (
    ErrorFolderNotFound,
    ErrorImpersonateUserDenied,
    ErrorIrresolvableConflict,
    ErrorNonExistentMailbox,
    UnauthorizedError,
)
from exchangelib.folders import Calendar, Contacts, Inbox, SentItems, Tasks
from exchangelib.items import NEVER_OVERWRITE

ALICE = "alice@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.com"
SVC = "svc"
PASSWORD = "pw-alice"

EWS_URL, CONTROL_URL = sys.argv[1], sys.argv[2]
results = []


def control(command, **fields):
    body = json.dumps(fields).encode() if fields else b""
    request = urllib.request.Request(f"{CONTROL_URL}/{command}", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read() or b"null")


def deliver(mailbox, folder, subject, categories=()):
    message = {"subject": subject, "from": "Buyer <buyer@contoso.com>", "to": [mailbox]}
    if categories:
        message["categories"] = list(categories)
    return control("deliver", mailbox=mailbox, folder=folder, message=message)["item_id"]


def check(name):
    """Runs the decorated function at once as the call NAME and records its outcome."""

    def run(fn):
        try:
            fn()
            results.append((name, None))
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            where = traceback.extract_tb(e.__traceback__)[-1]
            results.append((name, f"{type(e).__name__}: {e} (line {where.lineno})"))
        return fn

    return run


def expect_error(error, fn):
    try:
        fn()
    except error:
        return
    raise AssertionError(f"expected {error.__name__}")


def account(address, user, password, access_type):
    config = Configuration(
        service_endpoint=EWS_URL,
        credentials=Credentials(user, password),
        auth_type=BASIC,
        retry_policy=FailFast(),
    )
    return Account(address, config=config, autodiscover=False, access_type=access_type)


control("create_user", address=ALICE, password=PASSWORD)
control("create_user", address=BOB, password="pw-bob")
control("create_service_account", name=SVC, password="pw-svc")
control("grant_impersonation", account=SVC, mailbox=BOB)
control("create_mailbox", address=CAROL)
control("create_folder", mailbox=ALICE, path="Inbox/Deals")
control("create_folder", mailbox=ALICE, path="Inbox/Deals/Won")
control("create_folder", mailbox=ALICE, path="Inbox/Support")
for n in range(5):
    deliver(ALICE, "Inbox", f"Quote {n}", ["Red"] if n % 2 else [])
deliver(ALICE, "Inbox", "Lunch on Friday")
deliver(BOB, "Inbox", "For Bob")

alice = account(ALICE, ALICE, PASSWORD, DELEGATE)


@check("version guess")
def _():
    assert alice.version.build.major_version >= 15, alice.version


@check("folder map: every distinguished folder")
def _():
    assert isinstance(alice.inbox, Inbox)
    assert isinstance(alice.sent, SentItems)
    assert isinstance(alice.calendar, Calendar), alice.calendar
    assert isinstance(alice.contacts, Contacts), alice.contacts
    assert isinstance(alice.tasks, Tasks), alice.tasks
    assert alice.calendar.folder_class == "IPF.Appointment", alice.calendar.folder_class


@check("walk the whole tree")
def _():
    paths = {f.absolute for f in alice.root.walk()}
    for wanted in ["Inbox/Deals/Won", "Inbox/Support", "Calendar", "Contacts", "Deleted Items"]:
        assert any(p.endswith(wanted) for p in paths), (wanted, sorted(paths))


@check("inbox children")
def _():
    names = sorted(f.name for f in alice.inbox.children)
    assert names == ["Deals", "Support"], names
    assert (alice.inbox / "Deals" / "Won").name == "Won"


@check("all().only(subject, categories)")
def _():
    items = list(alice.inbox.all().only("subject", "categories"))
    assert len(items) == 6, [i.subject for i in items]
    red = sorted(i.subject for i in items if i.categories == ["Red"])
    assert red == ["Quote 1", "Quote 3"], red


@check("count, order_by and paging")
def _():
    assert alice.inbox.all().count() == 6
    qs = alice.inbox.all().order_by("-subject").only("subject")
    qs.page_size = 2
    subjects = [i.subject for i in qs]
    assert subjects == sorted(subjects, reverse=True) and len(subjects) == 6, subjects
    assert [i.subject for i in qs[1:3]] == subjects[1:3]


@check("filter(subject=...)")
def _():
    found = list(alice.inbox.filter(subject="Lunch on Friday"))
    assert [i.subject for i in found] == ["Lunch on Friday"], found
    assert alice.inbox.filter(subject__startswith="Quote").count() == 5
    assert alice.inbox.filter(categories__contains=["Red"]).count() == 2


sync = {}


@check("sync_items, first")
def _():
    changes = list(alice.inbox.sync_items(only_fields=["subject"]))
    creates = [i.subject for kind, i in changes if kind == "create"]
    assert len(creates) == 6, changes
    sync["state"] = alice.inbox.item_sync_state


@check("sync_items, second: only the new mail")
def _():
    deliver(ALICE, "Inbox", "After the first sync")
    changes = list(alice.inbox.sync_items(sync_state=sync["state"], only_fields=["subject"]))
    assert [(k, i.subject) for k, i in changes] == [("create", "After the first sync")], changes


@check("sync_hierarchy")
def _():
    changes = list(alice.inbox.sync_hierarchy())
    names = sorted(f.name for kind, f in changes if kind == "create")
    assert names == ["Deals", "Support", "Won"], names


@check("move")
def _():
    item = alice.inbox.get(subject="Quote 0")
    item.move(alice.inbox / "Deals")
    assert (alice.inbox / "Deals").filter(subject="Quote 0").count() == 1
    assert alice.inbox.filter(subject="Quote 0").count() == 0


@check("save into a folder")
def _():
    Message(account=alice, folder=alice.inbox / "Support", subject="Saved here").save()
    saved = (alice.inbox / "Support").get(subject="Saved here")
    assert saved.subject == "Saved here"


@check("categories round trip")
def _():
    item = alice.inbox.get(subject="Quote 2")
    item.categories = ["Tracked", "Blue"]
    item.save(update_fields=["categories"])
    again = alice.inbox.get(subject="Quote 2")
    assert sorted(again.categories) == ["Blue", "Tracked"], again.categories


@check("conflict: a stale change key is refused")
def _():
    item = alice.inbox.get(subject="Quote 4")
    fresh = alice.inbox.get(subject="Quote 4")
    fresh.categories = ["First"]
    fresh.save(update_fields=["categories"])
    item.categories = ["Second"]
    expect_error(
        ErrorIrresolvableConflict,
        lambda: item.save(update_fields=["categories"], conflict_resolution=NEVER_OVERWRITE),
    )
    assert alice.inbox.get(subject="Quote 4").categories == ["First"]


@check("copy and delete")
def _():
    item = alice.inbox.get(subject="Lunch on Friday")
    item.copy(alice.inbox / "Support")
    assert (alice.inbox / "Support").filter(subject="Lunch on Friday").count() == 1
    item.delete()
    assert alice.inbox.filter(subject="Lunch on Friday").count() == 0
    alice.inbox.get(subject="Quote 3").move_to_trash()
    assert alice.trash.filter(subject="Quote 3").count() == 1


@check("resolve_names")
def _():
    found = alice.protocol.resolve_names(["bob"])
    assert [m.email_address for m in found] == [BOB], found


@check("get_timezones")
def _():
    zones = list(alice.protocol.get_timezones(return_full_timezone_data=False))
    assert any(z.id == "UTC" for z in zones), zones[:3]


@check("convert_ids")
def _():
    from exchangelib.properties import AlternateId

    item = alice.inbox.get(subject="Quote 1")
    source = AlternateId(id=item.id, format="EwsId", mailbox=ALICE)
    converted = list(alice.protocol.convert_ids([source], destination_format="HexEntryId"))
    assert len(converted) == 1 and converted[0].format == "HexEntryId", converted


@check("impersonated folder access")
def _():
    bob = account(BOB, SVC, "pw-svc", IMPERSONATION)
    assert [i.subject for i in bob.inbox.all().only("subject")] == ["For Bob"]


@check("delegate access with full access, not without")
def _():
    def bobs_inbox():
        return [i.subject for i in account(BOB, ALICE, PASSWORD, DELEGATE).inbox.all()]

    expect_error(ErrorFolderNotFound, bobs_inbox)
    control("grant_full_access", account=ALICE, mailbox=BOB)
    assert bobs_inbox() == ["For Bob"]


@check("pull notifications")
def _():
    folder = alice.inbox / "Deals"
    subscription, watermark = folder.subscribe_to_pull()
    deliver(ALICE, "Inbox/Deals", "Pulled")
    kinds = [
        type(e).__name__
        for notification in folder.get_events(subscription, watermark)
        for e in notification.events
    ]
    assert "NewMailEvent" in kinds or "CreatedEvent" in kinds, kinds
    folder.unsubscribe(subscription)


@check("streaming notifications")
def _():
    folder = alice.inbox / "Support"
    subscription = folder.subscribe_to_streaming()
    deliver(ALICE, "Inbox/Support", "Streamed")
    kinds = []
    for notification in folder.get_streaming_events(subscription, connection_timeout=1):
        kinds += [type(e).__name__ for e in notification.events]
        if "NewMailEvent" in kinds:
            break
    assert "NewMailEvent" in kinds, kinds
    folder.unsubscribe(subscription)


@check("impersonation denied")
def _():
    expect_error(ErrorImpersonateUserDenied, lambda: account(CAROL, SVC, "pw-svc", IMPERSONATION).inbox)


@check("unknown mailbox")
def _():
    control("impersonate_all", account=SVC, allowed=True)
    expect_error(
        ErrorNonExistentMailbox,
        lambda: account("nobody@example.com", SVC, "pw-svc", IMPERSONATION).inbox,
    )


@check("401 for a wrong password")
def _():
    expect_error(UnauthorizedError, lambda: account(ALICE, ALICE, "wrong", DELEGATE).inbox)


for name, failure in results:
    print(f"ok {name}" if failure is None else f"FAIL {name}: {failure}")
failed = sum(1 for _, f in results if f is not None)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
