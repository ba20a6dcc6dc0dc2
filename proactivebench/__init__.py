"""ProactiveBench: do vision-language models ask for help instead of guessing?"""

__version__ = "0.1.0"
