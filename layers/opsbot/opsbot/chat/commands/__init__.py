"""Every chat command module; importing this package registers them all (see chat.registry), in this order."""
from opsbot.chat.commands import help, whoami, builds, release, approvals, config, pipelines, history, faq  # noqa: F401, I001
