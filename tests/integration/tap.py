"""A tiny TAP producer shared by the integration tests."""
import sys


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, detail=None):
        self.n += 1
        print(('ok %d - %s' if cond else 'not ok %d - %s') % (self.n, name))
        if not cond:
            self.failed += 1
            if detail:
                for line in str(detail).splitlines():
                    print('#   ' + line)
        sys.stdout.flush()
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, 'got  %r\nwant %r' % (got, want))

    def skip(self, why):
        self.n += 1
        print('ok %d # SKIP %s' % (self.n, why))

    def comment(self, text):
        for line in str(text).splitlines():
            print('# ' + line)

    def done(self):
        print('1..%d' % self.n)
        sys.exit(1 if self.failed else 0)
