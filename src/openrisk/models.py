"""The model registry: imports every ORM module so that ``Base.metadata`` knows all tables.

It lives outside ``core`` so that core imports no domain package; Alembic imports it.
"""

from openrisk.assets import models as asset_models
from openrisk.audit import models as audit_models
from openrisk.auth import models as auth_models
from openrisk.core import outbox as outbox_models
from openrisk.custom_fields import models as custom_field_models
from openrisk.marketplace import models as marketplace_models
from openrisk.methodology import models as methodology_models
from openrisk.mitigations import models as mitigation_models
from openrisk.notifications import models as notification_models
from openrisk.quantification import models as quantification_models
from openrisk.rbac import models as rbac_models
from openrisk.reports import models as report_models
from openrisk.risks import models as risk_models
from openrisk.saved_views import models as saved_view_models
from openrisk.tenants import models as tenant_models
from openrisk.tokens import models as token_models

__all__ = [
    "asset_models",
    "audit_models",
    "auth_models",
    "custom_field_models",
    "marketplace_models",
    "methodology_models",
    "mitigation_models",
    "notification_models",
    "outbox_models",
    "quantification_models",
    "rbac_models",
    "report_models",
    "risk_models",
    "saved_view_models",
    "tenant_models",
    "token_models",
]
