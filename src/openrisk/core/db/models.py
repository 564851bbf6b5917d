"""Imports every ORM module so that ``Base.metadata`` knows all tables (Alembic, tests)."""

from openrisk.audit import models as audit_models
from openrisk.auth import models as auth_models
from openrisk.rbac import models as rbac_models
from openrisk.tenants import models as tenant_models
from openrisk.tokens import models as token_models

__all__ = ["audit_models", "auth_models", "rbac_models", "tenant_models", "token_models"]
