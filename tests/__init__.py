"""The test suite as a package: mlforecast installs a top-level ``tests`` package, which
would otherwise shadow this folder in ``from tests.conftest import ...``."""
