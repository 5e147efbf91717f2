"""All configuration, loaded and validated before Spark starts: no module here imports pyspark.

    settings   conf/base.yaml + conf/<env>.yaml + --set overrides (Settings, load_settings)
    loading    a YAML file into a strict model, every mistake one line naming the file and the key
    checks     value checks that need no data (time zones, timestamp patterns, reader options, phone regions)

`from cdp.config import Settings, load_settings` serves the settings; each step's own file has its module here.
"""

from cdp.config.checks import short
from cdp.config.loading import CONF_FILES, SETTINGS_HINT, KeyProblem, Strict, load_yaml_model
from cdp.config.settings import (
    DEFAULT_CONF_DIR,
    PROJECT_ROOT,
    CatalogSettings,
    ErasureSettings,
    GraphSettings,
    IdentityRunSettings,
    IngestSettings,
    LockSettings,
    MlflowSettings,
    Paths,
    PrivacySettings,
    Settings,
    SilverSettings,
    SparkSettings,
    SynthSettings,
    conf_file,
    load_settings,
    parse_override,
)

__all__ = ["CONF_FILES", "DEFAULT_CONF_DIR", "PROJECT_ROOT", "SETTINGS_HINT", "CatalogSettings", "ErasureSettings",
           "GraphSettings", "IdentityRunSettings", "IngestSettings", "KeyProblem", "LockSettings", "MlflowSettings",
           "Paths", "PrivacySettings", "Settings", "SilverSettings", "SparkSettings", "Strict", "SynthSettings",
           "conf_file", "load_settings", "load_yaml_model", "parse_override", "short"]
