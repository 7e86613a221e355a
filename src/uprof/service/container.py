"""The services one app instance uses, built in one place (``uprof.app.build_services``)."""

from __future__ import annotations

from dataclasses import dataclass

from uprof.config import Settings
from uprof.service.clock import Clock
from uprof.service.keys import KeyService
from uprof.service.links import LinkService
from uprof.service.profiles import ProfileService
from uprof.store.database import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    profiles: ProfileService
    keys: KeyService
    links: LinkService
