"""PostgreSQL: leave a tenth of each page of ``user_profiles`` free, so that an update can stay
on its row's page.

An update that changes no indexed column (a metadata merge writes ``doc`` alone) can be a
heap-only tuple (HOT) update: the new version goes on the same page and no index gets a new
entry. That needs room on the page. At the default fill factor of 100 a table filled by inserts
has none, so the first update of most rows moved them to another page and wrote a new entry in
each of the table's three indexes: 28% of the updates were HOT in a first run of the update
benchmark on a freshly loaded store, 100% at 90 (decisions O17, docs/performance.md "Round 13").

The setting governs the pages written from now on; the pages of an existing table keep what
they hold until they are rewritten (``VACUUM FULL user_profiles``, which locks the table while
it runs, or gradually, as rows move). SQLite has no such setting: it changes a row in place.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FILLFACTOR = 90


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE user_profiles SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE user_profiles RESET (fillfactor)")
