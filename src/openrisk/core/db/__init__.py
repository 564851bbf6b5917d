from openrisk.core.db.base import Base
from openrisk.core.db.engine import Database, create_database

__all__ = ["Base", "Database", "create_database"]
