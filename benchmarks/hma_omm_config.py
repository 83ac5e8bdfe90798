# Not part of Amparo: an OMM_CONFIG for Meta's HMA, used by docs/benchmarks.md ("Lookups side by
# side with HMA") with benchmarks/lookup_load.py and hma_load_bank.py.
# OMM config for the Amparo side-by-side lookup benchmark (issue #19): matcher + curator,
# no UI, no fetcher; the index is built once by `flask build_indices`, each gunicorn
# worker loads it through the index cache task (refresh every 30 s, as the reference).
import os

from OpenMediaMatch.storage.postgres.impl import DefaultOMMStore
from threatexchange.content_type.photo import PhotoContent
from threatexchange.content_type.video import VideoContent
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal

DATABASE_URI = os.environ.get(
    "HMA_DATABASE_URI", "postgresql+psycopg2://postgres@127.0.0.1:5432/hma"
)
PRODUCTION = True
ROLE_HASHER = False
ROLE_MATCHER = True
ROLE_CURATOR = True
UI_ENABLED = False
TASK_FETCHER = False
TASK_INDEXER = False
TASK_INDEX_CACHE = True
TASK_INDEX_CACHE_INTERVAL_SECONDS = 30
INDEX_CACHE_MAX_STALE_SEC = 0  # a one-off load: never mark the index stale
STORAGE_IFACE_INSTANCE = DefaultOMMStore(
    signal_types=[PdqSignal, VideoMD5Signal],
    content_types=[PhotoContent, VideoContent],
    exchange_types=[],
)
