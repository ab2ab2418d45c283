"""The contracts of the Link Monitoring Server.

Start reading here. Every component of the LMS meets the others through one
of these interfaces, looked up in the component registry: the syncer asks
for the `IClientProvider` utility of the current site, not for a module's
internals.

The words used throughout:

client
    a content site (a Plone site with gocept.linkchecker, say) that
    registered with the LMS and subscribes to URLs.

URL
    one outgoing link, stored once however many clients subscribe to it.

state
    what the last checks said about a URL; one of `STATES`, the exact
    strings clients understand (see protocol.txt).
"""

import zope.container.constraints
import zope.interface
import zope.interface.common.mapping
import zope.schema
import zope.component.interfaces
import zope.location.interfaces


# The state strings are part of the wire protocol: clients map each to a
# colour and raise on anything else.
OK = 'ok'
TEMPORARY_UNAVAILABLE = 'temporary unavailable'
UNAVAILABLE = 'unavailable'
UNSUPPORTED = 'unsupported protocol'
UNKNOWN = 'unknown'
STATES = (OK, TEMPORARY_UNAVAILABLE, UNAVAILABLE, UNSUPPORTED, UNKNOWN)


class ILMS(zope.interface.Interface):
    """The LMS site.

    It is a folder in the ZODB root that is a site (ISite): its local site
    manager holds the utilities everything else finds through the
    component registry (app.UTILITIES creates them):

    * `IClientProvider`, the clients;
    * `IURLProvider`, the URLs, their states and the clients of each;
    * `ISchedule`, when each URL is due for a check;
    * `IStateCounts`, how many URLs are in each state;
    * `IChangeJournal`, the state changes the notifier has yet to hand
      out;
    * `IURLSearch`, URLs by host or beginning (the admins' pages);
    * `IRecentChanges`, the latest state changes (the dashboard);
    * `IClientFigures`, each client's monitoring figures in one place.
    """

    # Everything of an LMS lives in those utilities; the folder itself
    # holds nothing, so the ZMI offers nothing to add to it.
    zope.container.constraints.contains()


class IURL(zope.location.interfaces.IContained):
    """One URL the LMS watches on behalf of one or more clients."""

    url = zope.schema.ASCIILine(
        title='The URL itself, exactly as the clients registered it')

    id = zope.schema.Int(
        title='Integer key, unique within the URL provider',
        description='The traversal name (`__name__`) is its decimal form.')

    state = zope.schema.Choice(
        title='State', values=STATES, default=UNKNOWN)

    reason = zope.schema.TextLine(
        title='The latest explanation of the state', default=UNKNOWN)

    last_check = zope.schema.Datetime(
        title='When a check last changed what is known of the URL (UTC)',
        description='Its state, reason or failure history. A check that '
                    'confirms all three leaves the record alone.',
        required=False)

    last_state_change = zope.schema.Datetime(
        title='When the state last changed (UTC)', required=False)

    clients = zope.interface.Attribute(
        'Frozen set of the ids of the clients subscribed to this URL. '
        'Change it only through IClient.register_urls/unregister_urls.')

    def update_check(state, when, reason, history=None):
        """Record the outcome of a check made at `when`.

        If the state, the reason or the failure history `history` differ
        from what is stored, `last_check` becomes `when`;
        `last_state_change` moves only when `state` differs from the
        current state, and an `IURLStatesChangedEvent` fires then.
        """


class IURLStatesChangedEvent(zope.interface.Interface):
    """The states of URLs changed.

    One event for all changes a call of record_checks or update_check
    made: subscribers look themselves up once, not per URL.
    """

    provider = zope.interface.Attribute('The IURLProvider')
    changes = zope.interface.Attribute(
        'List of `(IURL object, state before)`')


class IURLsAddedEvent(zope.interface.Interface):
    """URLs were added to the URL provider (they still have to be checked).

    One event per call of add, add_multiple or add_ids, for all the URLs
    it created.
    """

    provider = zope.interface.Attribute('The IURLProvider')
    urls = zope.interface.Attribute('List of the new IURL objects')


class IURLsRemovedEvent(zope.interface.Interface):
    """URLs were removed from the URL provider (no client needs them).

    One event per call of remove or remove_many, for all the URLs it
    removed: subscribers fetch what they change for all of them at once.
    """

    provider = zope.interface.Attribute('The IURLProvider')
    removed = zope.interface.Attribute(
        'List of `(IURL object, its state, its URL string)`: the state and '
        'the string it had, as the provider holds neither by then')


class IURLProvider(zope.interface.common.mapping.IEnumerableMapping):
    """All URLs of an LMS site.

    As a mapping it is keyed by traversal name (`str(url.id)`), which keeps
    URLs, that contain slashes, reachable in the ZMI.
    """

    def add(url):
        """Return the IURL object for the URL string `url`.

        A known URL gives the existing object; an unknown one is created.
        Raises `InvalidURLError` for a string that `is_valid` refuses.
        """

    def add_multiple(urls):
        """Add many URL strings; return their IURL objects.

        Invalid strings and duplicates are skipped silently; the result has
        one object per distinct valid URL, in the order first seen.
        """

    def add_ids(urls):
        """Like add_multiple, but return a BTrees set of the keys.

        Known URLs are not loaded from the database, which makes this the
        cheap way to reconcile a large list.
        """

    def get_url(url):
        """Return the IURL object for a URL string, or None."""

    def by_id(id):
        """Return the IURL object with integer key `id`, or None."""

    def ids_for(urls):
        """Map URL strings to the integer keys of the known ones.

        Returns a BTrees set; unknown or invalid URLs are left out.
        """

    def strings(ids):
        """Iterate `(key, URL string)` for the URLs with these keys;
        unknown keys are skipped. Reads only what holds the strings."""

    def subscribers(ids):
        """Iterate `(key, tuple of client ids)` for the keys that have
        subscribers, in key order."""

    def state_rows(ids, unknown=None):
        """Iterate `[url, state, reason]` for the URLs with these keys, as
        updateManyStates sends them; unknown keys are skipped. With a set
        as `unknown`, the keys of URLs not checked yet are added to it."""

    def record_checks(checks):
        """Record checks, each `(key, state, when, reason, history)` (see
        IURL.update_check); return the set of keys that have no URL.

        A record is written only when the state, the reason or the failure
        history change: a check that confirms what is known costs no write
        here. One IURLStatesChangedEvent tells of all state changes.
        """

    def check_items(keys):
        """Iterate `(key, url string, failure history)` of the keys that
        are still there: what the checker needs to check them."""

    def remove(url):
        """Remove an IURL object that no client subscribes to any more."""

    def remove_many(urls):
        """Remove IURL objects that no client subscribes to any more.

        Raises ValueError, removing none, if one of them still has a
        client. What the removal reads is fetched first, for all of them
        at once; one IURLsRemovedEvent tells of all of them.
        """

    def host_entries(host, after=None):
        """`(position, key)` of the URLs that may be on `host` (as
        `urlsearch.host_of` gives it, e.g. `com.example.www:8080`), in
        the order of their positions, after the position `after` (None:
        from the first). URLs of a few other hosts may come too; the
        caller compares their strings."""

    def prefetch(ids):
        """Fetch the strings, records and subscribers of the URLs with
        these keys from the storage together, for work on many of them
        (a read only: it changes nothing)."""

    def is_valid(url):
        """Whether the string `url` may be stored.

        It must be a string of at most 2048 printable ASCII characters
        without spaces that is an absolute URI: a scheme, a colon and
        something after it that is not an empty authority.
        """


class ISchedule(zope.interface.Interface):
    """When each URL is checked next (a local utility of the LMS site).

    Times are epoch seconds (UTC); keys are IURL.id. New URLs wait apart
    from the time order; every other URL has one entry, at its next check.
    The checker moves an entry when it claims the URL and when it writes
    the result; there is no map from key to time (schedule.txt says why).
    """

    shards = zope.interface.Attribute(
        'The shards (schedule.Shard): the URLs of a host are in one; '
        'a checker leases whole shards (shardlease.py)')

    workers = zope.interface.Attribute(
        'The checkers that lease shards, by name (shardlease.Worker)')

    def shard(key):
        """The shard URL `key` is in, or None if it was never scheduled."""

    def add_new(urls, now=None):
        """Make the new URLs due at once; `urls` are (key, URL string)
        pairs (the string tells the shard)."""

    def schedule(key, url, when):
        """Give URL `key` (the string `url`), which has no entry yet, its
        first one at `when` (for schema evolution and tests)."""

    def claim(now, limit, lease, shards=None):
        """Take up to `limit` due keys for checking, new URLs first, from
        the shards numbered `shards` (all if None).

        Returns `(until, keys)`: each key's entry moved to `until`, `now +
        lease`. If the checker dies before it writes a result, the URL is
        due again then, never stuck.
        """

    def claim_placed(now, limit, lease, shards=None):
        """claim(), answering `(until, [(key, shard number)])`: the claim
        knows each key's shard, which `shard(key)` would have to read."""

    def reschedule(key, until, when):
        """Move the entry of `key` claimed until `until` to `when`.

        Returns False, changing nothing, if the entry is not at `until`
        any more (the lease ran out and another claim took the URL).
        """

    def reschedule_many(moves):
        """reschedule() each `(key, until, when, shard number)` of `moves`;
        what that reads is fetched from the storage for all of them at
        once. The shard number is the one `claim_placed` answered, or None
        (then it is looked up). Returns how many moved."""

    def release(key, until):
        """Drop the entry of `key` claimed until `until`: its URL was
        removed while it was checked."""

    def unschedule(key):
        """Forget URL `key` (it was removed). Its entry, if it has one, is
        dropped when it comes due; until then the key is stale."""

    def unschedule_many(keys):
        """unschedule() each of `keys`; what that reads is fetched from
        the storage for all of them at once."""

    def is_stale(key):
        """Whether an entry of a removed URL may still hold `key` (such a
        key is not given to a new URL)."""

    def due(now, limit=None):
        """Keys of URLs due at `now`: new ones first, then most overdue
        first."""

    def backlog(now):
        """How many URLs are due at `now`, counted per time slot (it does
        not read every due entry)."""


class IStateCounts(zope.interface.Interface):
    """How many URLs of a site are in each state (a local utility).

    Kept up to date by subscribers of the URL events, so that monitoring
    does not have to read every URL record to answer.
    """

    def __getitem__(state):
        """The number of URLs in `state` (0 for an unknown state)."""

    def counts():
        """A dict mapping every state in STATES to its count."""

    def change(state, delta):
        """Add `delta` to the count of `state`."""

    def recount(urls):
        """Set the counts from the records of the IURLProvider `urls`
        (reads every URL; for repairs and schema evolution)."""


class IURLSearch(zope.interface.Interface):
    """Finds URLs by host or by the beginning of the URL (a local utility
    of the LMS site; urlsearch.py and urlsearch.txt).

    The URL provider finds a URL only by its whole string; this index
    orders every URL by its host, read backwards (`com.example.www`), and
    what follows, so that a search reads the matching range only.
    Subscribers of the URL events keep it up to date.
    """

    def index(key, url):
        """Note URL `key` with the string `url`."""

    def index_many(items):
        """index() each `(key, url)` of `items`, fetching what that
        changes from the storage for all of them at once."""

    def unindex(key, url):
        """Forget URL `key`, which had the string `url`."""

    def unindex_many(items):
        """unindex() each `(key, url)` of `items`, as index_many."""

    def search(query, after=None, limit=50):
        """Find URLs for `query`, in the order of the index.

        A query with `://` is the beginning of URLs (scheme and whole
        host, then any part of the rest); any other query is a host name,
        which matches the host and its subdomains. Returns `(keys,
        cursor)`: up to `limit` URL keys, and a string to pass as `after`
        for the next ones (None when there are no more). A call reads a
        bounded part of the index, so it may return fewer than `limit`
        keys with a cursor.
        """


class IRecentChanges(zope.interface.Interface):
    """The latest state changes of a site's URLs, a few dozen at most (a
    local utility; recent.py). For the admins' dashboard: the change
    journal hands its entries out within seconds."""

    def note(changes, when=None):
        """Note `(key, state before, state now)` triples that changed at
        `when` (microseconds since the epoch; now if None)."""

    def latest():
        """`(when, key, state before, state now)`, newest first; `when`
        in microseconds since the epoch."""


class InvalidURLError(ValueError):
    """A string that cannot be stored as a URL."""


class IClient(zope.location.interfaces.IContained):
    """A content site that uses the LMS."""

    id = zope.schema.ASCIILine(title='Client id')


    contact_name = zope.schema.TextLine(title='Contact name', default='')

    contact_email = zope.schema.ASCIILine(title='Contact e-mail', default='')

    callback = zope.schema.URI(
        title='XML-RPC address of the client', required=False)

    urls = zope.interface.Attribute(
        'The IURL objects this client subscribes to (iterable, sized).')

    url_ids = zope.interface.Attribute(
        'The integer keys of those URLs, a BTrees set (read-only).')

    def set_password(password, key_file):
        """Store a salted hash of `password` and a copy sealed with the
        key in `key_file` (`secret-key-file`); the plain text is not
        kept."""

    def check_password(password):
        """Compare `password` with the stored hash in constant time."""

    def register_urls(urls):
        """Subscribe to the IURL objects `urls`; already known ones are
        ignored. Keeps both sides of the client-URL relation in step."""

    def unregister_urls(urls):
        """Unsubscribe from the IURL objects `urls`. URLs that no client
        subscribes to afterwards are removed from the URL provider."""

    def callback_password(key_file):
        """The client's password in plain text, for the calls to its
        callback (the protocol sends it along); unsealed with the key in
        `key_file` (`secret-key-file`). None for a client without one."""


class IClientProvider(zope.interface.common.mapping.IEnumerableMapping):
    """All clients of an LMS site, keyed by id."""

    def add(client):
        """Add an IClient. Raises KeyError when the id is taken."""

    def remove(id):
        """Remove a client, unsubscribing it from all its URLs first."""


class ISynchronization(zope.interface.Interface):
    """How and when a client was synchronized (adapter of IClient, its
    state persists with the client)."""

    last = zope.schema.Datetime(
        title='Start of the last successful sync', required=False)

    force = zope.schema.Bool(
        title='Sync at the next syncer run regardless of the interval',
        default=False)

    last_attempt = zope.schema.Datetime(
        title='Start of the last sync attempt, failed or not',
        required=False)

    failures = zope.schema.Int(
        title='Failed attempts since the last successful sync', default=0)

    last_error = zope.schema.TextLine(
        title='Why the last attempt failed', required=False)

    touched = zope.interface.Attribute(
        'While a sync runs: the hashes of the URLs the API registered or '
        'unregistered since it began, which the sync leaves alone '
        '(syncwindow.py); None otherwise.')

    def due(now, settings):
        """Whether the syncer should sync the client at `now`, with the
        `ISettings` of the syncer.

        Once per `sync-interval`; after failed syncs sooner, `sync-retry`
        minutes doubling up to the interval, at any count of failures. A
        client whose notifications the LMS switched off is tried once per
        interval, failed or not: its sync is the try whether it is back.
        """

    def sync(settings, now=None):
        """Synchronize the client now with the `ISettings` of the calling
        process; return an `ISyncResult`.

        Raises on failure without changing the client's URLs; the caller
        aborts the transaction and calls `record_failure`.
        """

    def record_failure(now, error):
        """Note a failed attempt (in its own transaction)."""


class ISyncResult(zope.interface.Interface):
    """The figures of one client's sync."""

    client_id = zope.interface.Attribute('Client id')
    fetched = zope.interface.Attribute('Entries in the getAllLinks answer')
    added = zope.interface.Attribute('URLs newly subscribed')
    removed = zope.interface.Attribute('URLs unsubscribed')
    notified = zope.interface.Attribute('States sent back')
    seconds = zope.interface.Attribute('Wall time')


# Who switched a client's notifications off (INotifications.disabled_by).
DISABLED_BY_LMS = 'lms'
DISABLED_BY_CLIENT = 'client'


class INotifications(zope.interface.Interface):
    """Whether and how state changes are pushed to a client (adapter of
    IClient, its state persists with the client)."""

    enabled = zope.schema.Bool(
        title='Push state changes to the client', default=True)

    disabled_by = zope.schema.Choice(
        title='Who switched the notifications off (None while they are on)',
        description='DISABLED_BY_LMS: the notifier, after pushes failed '
                    'for a long time; the syncer tries the client once a '
                    'day and switches them on again when it answers. '
                    'DISABLED_BY_CLIENT: the client itself, with '
                    'setClientNotifications(false); they stay off, and '
                    'the client is not synced, until it switches them on. '
                    'Clients switched off before this was recorded count '
                    'as switched off by the LMS if pushes to them had '
                    'failed, by themselves otherwise.',
        values=(DISABLED_BY_LMS, DISABLED_BY_CLIENT), required=False,
        readonly=True)

    disabled_at = zope.schema.Datetime(
        title='When the notifications were switched off', required=False,
        readonly=True)

    last = zope.schema.Datetime(
        title='Last successful push', required=False)

    last_attempt = zope.schema.Datetime(
        title='Start of the last push, failed or not', required=False)

    failed = zope.schema.Int(
        title='Failed pushes in a row', default=0)

    failing_since = zope.schema.Datetime(
        title='When the first of the failed pushes in a row started',
        description='None after a successful push.', required=False)

    last_error = zope.schema.TextLine(
        title='Why the last push failed', required=False)

    pending = zope.interface.Attribute(
        'IPendingChanges: the keys of URLs whose state changed since the '
        'last successful push.')

    def switch_off(by, when):
        """Stop the pushes: `by` is DISABLED_BY_LMS or DISABLED_BY_CLIENT,
        `when` the time. Switching off again by the same keeps the first
        time."""

    def switch_on():
        """Push again, and forget the failures and who switched off."""


class IPendingChanges(zope.interface.common.mapping.IReadMapping):
    """One client's changes on their way to it (PendingChanges, client.py):
    the keys of URLs whose state changed since the last successful push,
    mapped to the time of the change (microseconds). It merges concurrent
    changes; past its limit it holds one note that everything changed."""

    def __len__():
        """How many keys wait."""

    def __iter__():
        """The keys, in order."""

    def keys():
        """The keys, in order."""

    def items():
        """(key, time) pairs, in the order of the keys."""

    def note(key, when):
        """Note that the state of URL `key` changed at `when`."""

    def keys_to_send(snapshot, client):
        """The URL keys a push of `snapshot` (a dict read from this map)
        sends to `client`: those of its URLs that changed, or all of them
        once everything changed."""

    def remove_unchanged(snapshot):
        """Remove each key whose time is still the one in `snapshot`;
        keys changed since then stay. Returns the number removed."""


class IChangeJournal(zope.interface.Interface):
    """State changes on their way to the clients' pending maps (a local
    utility of the LMS site; journal.py)."""

    def __len__():
        """How many changed URLs wait to be handed out (kept as a
        counter, not counted)."""

    def record(keys, when=None):
        """Append one entry: the URL keys whose state changed at `when`
        (microseconds since the epoch; now if None)."""

    def take(limit):
        """Remove and return the oldest entries, `(when, keys)`, until
        they hold at least `limit` keys or there are no more."""

    def pending():
        """The entries not taken yet, `(when, keys)`, oldest first."""


class IClientFigures(zope.interface.Interface):
    """A copy of each client's monitoring figures in one place, kept up
    to date as they change (a local utility of the LMS site;
    clientfigures.py): what `@@metrics` shows per client, read without
    loading every client."""

    def note(client_id, part, values):
        """Store the figures of one `part` of a client: ``notify``
        (enabled, failed, last of INotifications) or ``sync`` (failures,
        last of ISynchronization). Writes only when they changed."""

    def forget(client_id):
        """Drop the client's figures (it was removed)."""

    def figures():
        """client id -> part -> figure name -> value, for every client."""


class INotificationsDisabledEvent(zope.interface.Interface):
    """Notifications of a client were switched off after failed pushes."""

    client = zope.interface.Attribute('The IClient')
    failures = zope.interface.Attribute('Failed pushes in a row')
    error = zope.interface.Attribute('The last error, as text')
    since = zope.interface.Attribute('When the first of them started')
    when = zope.interface.Attribute('When the notifications were '
                                    'switched off')


class INotificationsReenabledEvent(zope.interface.Interface):
    """Notifications the LMS had switched off are on again: the client
    answered the syncer's daily try and was synced."""

    client = zope.interface.Attribute('The IClient')
    disabled_at = zope.interface.Attribute(
        'When the LMS had switched them off (None if not recorded)')
    when = zope.interface.Attribute('When they came back on')


class ICallbackTransport(zope.interface.Interface):
    """Opens XML-RPC connections to client callbacks (a utility; tests
    replace it with a recording dummy)."""

    def connect(url, timeout):
        """Return an `xmlrpc.client.ServerProxy`-like object for `url`
        whose calls give up after `timeout` seconds without progress
        (`callback-timeout`)."""


class ISettings(zope.interface.Interface):
    """Product configuration, read from `<product-config gocept.lms>` in
    `etc/zope.conf`. The defaults here are the documented defaults.

    Keys starting with `checker-` configure the checks themselves
    (concurrency, politeness, timeouts, the address allow-list, the state
    policy); their schemas are `ICheckerSettings` and `IPolicySettings`
    in `checking/settings.py`.
    """

    lms_name = zope.schema.TextLine(
        title='Name of this LMS, used in mails',
        default='Link Monitoring Server')

    site_name = zope.schema.TextLine(
        title='Name of the LMS site in the root folder',
        description='Created there on first start.',
        default='lms')

    public_url = zope.schema.ASCIILine(
        title='Public XML-RPC address of the LMS site',
        default='http://127.0.0.1:8080/lms/')

    http_address = zope.schema.ASCIILine(
        title='host:port bin/web listens on',
        default='127.0.0.1:8080')

    sync_interval = zope.schema.Float(
        title='Hours between two syncs of one client',
        description='23 rather than 24, so an hourly cron job syncs each '
                    'client once a day at about the same hour instead of '
                    'an hour later every day.',
        default=23.0)

    sync_retry = zope.schema.Float(
        title='Minutes before a failed sync is tried again',
        description='Doubles with every failure in a row, up to the sync '
                    'interval. A client whose notifications the LMS '
                    'switched off is tried once per sync interval.',
        default=30.0)

    callback_timeout = zope.schema.Float(
        title='Seconds to wait for a client callback', default=60.0)

    callback_batch_size = zope.schema.Int(
        title='States per updateManyStates call', default=1000, min=1)

    notify_interval = zope.schema.Float(
        title='Seconds between two pushes to one client', default=15.0)

    notify_retry = zope.schema.Float(
        title='Seconds before a failed push is tried again',
        description='Doubles with every failure in a row, up to '
                    'notify-retry-max; never less than notify-interval.',
        default=15.0, min=0.0)

    notify_retry_max = zope.schema.Float(
        title='Most seconds between two tries of a failing push',
        default=3600.0, min=0.0)

    notify_max_failures = zope.schema.Int(
        title='Failed pushes in a row that switch notifications off',
        description='Only together with notify-failure-hours: both must '
                    'be reached.',
        default=20, min=1)

    notify_failure_hours = zope.schema.Float(
        title='Hours failed pushes in a row must span to switch '
              'notifications off',
        description='Counted from the first failure of the run, so a '
                    'client that is down for minutes keeps its '
                    'notifications. The syncer then tries the client once '
                    'a day and switches them on again when it answers.',
        default=24.0, min=0.0)

    notify_workers = zope.schema.Int(
        title='Clients the notifier pushes to at the same time',
        default=4, min=1)

    notify_poll = zope.schema.Float(
        title='Seconds between two rounds of the notifier', default=5.0)

    check_claim_size = zope.schema.Int(
        title='URLs bin/checker takes from the schedule at a time',
        default=2000, min=1)

    check_lease = zope.schema.Float(
        title='Minutes a taken URL stays reserved',
        description='A URL whose check never finishes (the checker died) '
                    'is due again after this.',
        default=15.0)

    check_write_size = zope.schema.Int(
        title='Results written per transaction',
        description='Larger batches cost fewer commits (1000 instead of '
                    '250 took the checker with database writes from about '
                    '2,000 to 2,900 URLs/s) and fewer bytes: a batch '
                    'moves its URLs in every shard of the schedule, a '
                    'few buckets each, so at 1M URLs 2000 instead of '
                    '1000 wrote 90 instead of 159-180 bytes per check '
                    'that changed nothing. A crash loses the batches in '
                    'flight (at most two), whose URLs are checked again '
                    'after the lease. A batch that fills slowly is '
                    'written after check-write-interval.',
        default=2000, min=1)

    check_write_interval = zope.schema.Float(
        title='Seconds a result waits at most for its batch to fill',
        description='When a result comes in and the oldest result not '
                    'written yet is this old, the batch is written as it '
                    'is: a checker slowed down by the per-host rate '
                    'would otherwise keep state changes from the '
                    'notifier for minutes.',
        default=10.0, min=0.0)

    check_database_cache_size = zope.schema.Int(
        title="Objects in the object cache of bin/checker's database "
              "process",
        description='It claims and writes URLs at random places of '
                    'trees far larger than any cache, so few objects '
                    'are used twice; the cache-size of the <zodb> section '
                    'applies to the other processes. In one run at 1M '
                    'URLs, 10,000 instead of 20,000 (with the smaller '
                    'schedule buckets of the same change) held the '
                    'process at 144-151 MiB instead of 165, checking at '
                    'the same rate.',
        default=10000, min=100)

    check_poll = zope.schema.Float(
        title='Seconds the checker daemon sleeps when nothing is due',
        description='New URLs wait at most this long for their first '
                    'check; a look for due work is one small read.',
        default=5.0)

    check_shard_lease = zope.schema.Float(
        title='Seconds a checker leases its shards of the schedule',
        description='Each checker renews its lease three times within '
                    'this; the shards of a checker that died are taken '
                    'over by the others when it ends (the URLs it had '
                    'claimed come due after check-lease).',
        default=30.0, min=1.0)

    check_stats_file = zope.schema.TextLine(
        title='File where bin/checker publishes its figures',
        description='Checks in flight and the check latency histogram, '
                    'rewritten every few seconds and read by the @@metrics '
                    'and @@munin-threadpool views of the web server, so '
                    'both processes must see the same file. Empty: not '
                    'published.',
        default='var/checker-stats.json', required=False)

    secret_key_file = zope.schema.TextLine(
        title='File with the key that seals client passwords',
        description='Created (mode 0600) on first use. Keep it out of the '
                    'database backups, and keep it: without it the LMS '
                    'cannot call its clients back.',
        default='var/secret.key')

    # The client API (api.py) and its mails (mail.py)

    admin_secret_file = zope.schema.TextLine(
        title='File holding the admin secret',
        description='registerClient, listClients and unregisterClient '
                    'take this secret as their first argument. Empty: '
                    'those methods refuse every call.',
        default='')

    max_urls_per_call = zope.schema.Int(
        title='Most URLs in one registerURLs/unregisterURLs/getURLStates '
              'call; larger calls get a Fault and change nothing',
        default=50000, min=1)

    max_request_bytes = zope.schema.Int(
        title='Largest XML-RPC request body accepted, in bytes',
        description='Larger requests are refused with HTTP 413 before '
                    'they are parsed.',
        default=64 * 1024 * 1024, min=1024)

    # Failed logins (throttle.py): client passwords, the admin secret and
    # ZMI logins, counted in the memory of each web process.

    login_failures = zope.schema.Int(
        title='Failed logins of one name within login-window after which '
              'its attempts are refused',
        description='A name is a client id, the admin secret or a ZMI '
                    'login. Refused attempts are answered at once, without '
                    'a look at the password, and do not prolong the '
                    'penalty: another attempt is let through every '
                    'login-window / login-failures seconds, and a name is '
                    'forgotten one login-window after its last failure. '
                    '0: no limit.',
        default=10, min=0)

    login_failures_per_address = zope.schema.Int(
        title='Failed logins from one remote address within login-window '
              'after which its attempts are refused, whatever the name',
        description='Higher than login-failures, since many clients may '
                    'share an address (a hosting server, NAT). Behind a '
                    'reverse proxy every request comes from the address of '
                    'the proxy (bin/web does not read X-Forwarded-For): '
                    'set 0 (no limit) there.',
        default=100, min=0)

    login_window = zope.schema.Float(
        title='Seconds over which failed logins are counted',
        description='Also the period of the log summaries of failed '
                    'logins.',
        default=300.0, min=1.0)

    login_throttle_entries = zope.schema.Int(
        title='Names and addresses with failed logins remembered at most',
        description='Per web process; past this the one that failed '
                    'longest ago is forgotten (up to about a kilobyte '
                    'each).',
        default=10000, min=100)

    login_cache_seconds = zope.schema.Float(
        title='Seconds a verified ZMI login is trusted without bcrypt',
        description='The stored hash is bcrypt, which costs a quarter of '
                    'a second to check; a login that passed is trusted for '
                    'this long in the web process that checked it, by a '
                    'keyed hash of the password. 0 checks every request.',
        default=300.0, min=0.0)

    mail_sender = zope.schema.ASCIILine(
        title='From address of the mails to client contacts',
        default='lms@localhost')

    mail_copy_to = zope.schema.TextLine(
        title='Addresses (separated by spaces or commas) that get a copy '
              'of every mail to a client contact',
        default='')

    mail_queue = zope.schema.TextLine(
        title='Maildir queue of outgoing mail',
        description='Mails are written there when the transaction commits '
                    'and sent by the queue processor. Empty: send directly '
                    'at commit time.',
        default='var/mailqueue')

    smtp_helo_name = zope.schema.ASCIILine(
        title='Name the LMS greets the SMTP server with',
        description='Empty: the fully qualified name of this host.',
        default='', required=False)

    smtp_host = zope.schema.ASCIILine(
        title='SMTP server for outgoing mail', default='localhost')

    smtp_port = zope.schema.Int(title='Its port', default=25)
