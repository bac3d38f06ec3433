"""An independent reference for the KQL the rules use, written from KQL's
documented semantics (not from signwatch's code): `has` is a term match,
case-insensitive; `between` is inclusive; summarize's min/max/make_set/
count by keys."""
import unicodedata


def _alnum(ch):
    # KQL terms are runs of Unicode letters and digits.
    return unicodedata.category(ch)[0] in ('L', 'N')


def fold(s):
    return s.casefold()


def has(hay, needle):
    """KQL `has`: the needle occurs in the haystack on term boundaries."""
    h, n = fold(hay or ''), fold(needle)
    if not n:
        return False
    start = 0
    while True:
        i = h.find(n, start)
        if i < 0:
            return False
        j = i + len(n)
        ok_left = not _alnum(n[0]) or i == 0 or not _alnum(h[i - 1])
        ok_right = not _alnum(n[-1]) or j == len(h) or not _alnum(h[j])
        if ok_left and ok_right:
            return True
        start = i + 1


def has_any(hay, needles):
    return any(has(hay, n) for n in needles)


def summarize(matches, now_ms, days=5, cap=1048576):
    """The Pulseway-shaped summarize over matches (dicts with Timestamp ms,
    DeviceId, DeviceName, ReportId) in the window [now - days, now]."""
    lo, hi = now_ms - days * 86400000, now_ms
    groups = {}
    for m in matches:
        if lo <= m['Timestamp'] <= hi:
            groups.setdefault((m['DeviceId'], m['DeviceName']), []).append(m)
    out = {}
    for key, ms in groups.items():
        ids = sorted({m['ReportId'] for m in ms})[:cap]
        out[key] = {
            'FirstSeen': min(m['Timestamp'] for m in ms),
            'LastSeen': max(m['Timestamp'] for m in ms),
            'Report': ids,
            'Count': len(ms),
        }
    return out
