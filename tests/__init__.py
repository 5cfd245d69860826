import pytest

# Before any helper module is imported: their plain `assert`s report like the tests' own.
pytest.register_assert_rewrite("testkit", "tests.support")
