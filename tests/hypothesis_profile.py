"""The hypothesis profiles of the suite: with `CI` set (true/1/yes), a derandomized one, so CI runs the same cases every time.

Imported by tests/test_properties.py before it builds its `settings`, which inherit the loaded profile.
`HYPOTHESIS_PROFILE=ci` (or `dev`) chooses one explicitly.
"""
import os
from hypothesis import settings

settings.register_profile('ci', derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile('dev', deadline=None)
_ci = os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes')
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE') or ('ci' if _ci else 'dev'))
