"""The one Powertools logger. Service name and level come from POWERTOOLS_* variables (template Globals)."""

from aws_lambda_powertools import Logger

logger = Logger()
