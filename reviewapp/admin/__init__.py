"""Django admin: the registry of the domain's models and the API clients' admin."""

from reviewapp.admin import api, registry  # noqa: F401 - importing registers the ModelAdmins
