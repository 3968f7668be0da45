"""The toy data with its content scheme and word-piece tokenizer, for the generator-option tests."""

import pytest

from jointsid_utils.generator.model import make_tokenizer
from jointsid_utils.generator.tokenization import make_id_scheme

from generator_fixtures import TINY, toy_data


@pytest.fixture(scope="module")
def toy():
    items, inter, queries, codes = toy_data()
    scheme = make_id_scheme("content", codes)
    tok = make_tokenizer(scheme, items, queries, TINY)
    return items, inter, queries, codes, scheme, tok
