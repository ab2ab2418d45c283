"""Checking links over the network: what happened, and what it means.

policy   pure: outcome + history -> state, reason, next check (policy.txt)
guard    which addresses may be contacted; resolves names for aiohttp/FTP
resolve  the name cache below the guard: time limit, answers and failures
http     http/https: HEAD then GET, manual redirects, timeouts, Retry-After
ftp      ftp: login, file download starts / directory listed
mailto   mailto: address syntax, optional MX lookup
settings the schemas of the checker-* keys: PolicySettings and
         CheckerSettings
engine   Checker, check_many: concurrency, pacing per name and address,
         work handed out as hosts are ready

Nothing here touches the database; the checker process feeds `engine` with
``(key, url, history)`` items and stores the `policy.Result`s it yields.
"""
