"""Task readers on small files written in the real formats (GLUE, ChnSentiCorp, CoNLL-2003,
People's Daily, CLUENER, SQuAD v1.1/v2.0, CMRC2018, SWAG)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertforge.errors import BertForgeError
from bertforge.tasks.readers import (
    convert_tags,
    label_list,
    read_choice_examples,
    read_qa_examples,
    read_tagged_examples,
    read_text_examples,
)
from bertforge.tasks.tags import detect_scheme, get_entities


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ text classification
def test_sst2_tsv_keeps_unbalanced_quotes_as_text(tmp_path):
    path = write(
        tmp_path, "train.tsv", "sentence\tlabel\nit 's a \"charming journey \t1\nbad , bad movie \t0\n"
    )
    result = read_text_examples(path)
    assert [(e.text, e.label, e.line) for e in result.examples] == [
        ("it 's a \"charming journey ", "1", 2),
        ("bad , bad movie ", "0", 3),
    ]
    assert result.examples[0].text_pair is None
    assert label_list(result) == ["0", "1"]


def test_mrpc_reads_pairs_despite_byte_order_mark(tmp_path):
    text = (
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        "1\t702876\t702977\tAmrozi accused his brother .\tReferring to him , Amrozi accused his brother .\n"
        "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought Dominick 's in 1995 .\n"
    )
    result = read_text_examples(write(tmp_path, "mrpc.tsv", text))
    first = result.examples[0]
    assert (first.text, first.text_pair, first.label) == (
        "Amrozi accused his brother .",
        "Referring to him , Amrozi accused his brother .",
        "1",
    )
    assert [e.label for e in result.examples] == ["1", "0"]


def test_stsb_score_is_a_float_label_for_regression(tmp_path):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    rows = "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking off.\t5.000\n"
    rows += "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man plays a flute.\tA man plays a big flute.\t3.800\n"
    result = read_text_examples(write(tmp_path, "sts.tsv", header + rows), regression=True)
    assert [(e.text, e.text_pair, e.label) for e in result.examples] == [
        ("A plane is taking off.", "An air plane is taking off.", 5.0),
        ("A man plays a flute.", "A man plays a big flute.", 3.8),
    ]
    with pytest.raises(BertForgeError, match="no label set"):
        label_list(result)


def test_cola_without_header_is_guessed_as_source_label_mark_sentence(tmp_path):
    text = "gj04\t1\t\tOur friends won't buy this analysis.\ngj04\t0\t*\tThey drank the pub.\n"
    result = read_text_examples(write(tmp_path, "cola.tsv", text))
    assert [(e.text, e.label, e.line) for e in result.examples] == [
        ("Our friends won't buy this analysis.", "1", 1),
        ("They drank the pub.", "0", 2),
    ]


def test_qnli_index_column_is_ignored_and_question_comes_first(tmp_path):
    text = (
        "index\tquestion\tsentence\tlabel\n0\tWhat came into force?\tThe law came into force.\tentailment\n"
    )
    (example,) = read_text_examples(write(tmp_path, "qnli.tsv", text)).examples
    assert (example.text, example.text_pair, example.label) == (
        "What came into force?",
        "The law came into force.",
        "entailment",
    )


def test_mnli_like_file_takes_gold_label_and_plain_sentences(tmp_path):
    header = "index\tpromptID\tpairID\tgenre\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
    row = "0\t31193\t31193n\tgov\t( ( x ) )\t( ( y ) )\tConceptually cream skimming.\tProduct and geography.\tneutral\tneutral\n"
    row2 = "1\t1\t1e\tgov\t( x )\t( y )\tA man sleeps.\tA person rests.\tneutral\tentailment\n"
    result = read_text_examples(write(tmp_path, "mnli.tsv", header + row + row2))
    assert [(e.text, e.text_pair, e.label) for e in result.examples] == [
        ("Conceptually cream skimming.", "Product and geography.", "neutral"),
        ("A man sleeps.", "A person rests.", "entailment"),
    ]
    assert label_list(result) == ["entailment", "neutral"]


def test_chnsenticorp_label_then_text_a(tmp_path):
    text = "label\ttext_a\n1\t选择珠江花园的原因就是方便\n0\t房间太小。其他的都一般。\n"
    result = read_text_examples(write(tmp_path, "dev.tsv", text))
    assert [(e.text, e.label) for e in result.examples] == [
        ("选择珠江花园的原因就是方便", "1"),
        ("房间太小。其他的都一般。", "0"),
    ]


def test_test_split_without_label_column_is_unlabelled(tmp_path):
    result = read_text_examples(write(tmp_path, "test.tsv", "index\tsentence\n0\tuneasy mishmash .\n"))
    assert [(e.text, e.label) for e in result.examples] == [("uneasy mishmash .", None)]


def test_csv_quoted_field_spanning_lines_is_numbered_by_its_first_line(tmp_path):
    text = 'text,label\n"first, with comma",pos\n"two\nlines",neg\nlast,pos\n'
    result = read_text_examples(write(tmp_path, "data.csv", text))
    assert [(e.text, e.label, e.line) for e in result.examples] == [
        ("first, with comma", "pos", 2),
        ("two\nlines", "neg", 3),
        ("last", "pos", 5),
    ]


def test_jsonl_with_named_columns_and_integer_labels(tmp_path):
    lines = [
        {"premise": "A dog runs.", "hypothesis": "An animal moves.", "label": 0},
        {"premise": "x", "hypothesis": "y", "label": 2},
    ]
    path = write(tmp_path, "nli.jsonl", "\n".join(json.dumps(r) for r in lines) + "\n")
    result = read_text_examples(path)
    assert [(e.text, e.text_pair, e.label, e.line) for e in result.examples] == [
        ("A dog runs.", "An animal moves.", "0", 1),
        ("x", "y", "2", 2),
    ]


def test_columns_by_index_and_by_name_agree(tmp_path):
    path = write(tmp_path, "d.tsv", "id\tbody\tstars\n7\tgreat\t5\n8\tawful\t1\n")
    by_name = read_text_examples(path, text_column="body", label_column="stars").examples
    by_index = read_text_examples(path, text_column=1, label_column=2).examples
    assert by_name == by_index
    assert [(e.text, e.label) for e in by_index] == [("great", "5"), ("awful", "1")]


def test_labels_sort_numerically(tmp_path):
    path = write(tmp_path, "d.tsv", "label\ttext\n10\ta\n2\tb\n1\tc\n")
    assert label_list(read_text_examples(path)) == ["1", "2", "10"]


def test_wrong_column_lists_the_columns_that_exist(tmp_path):
    path = write(tmp_path, "d.tsv", "sentence\tlabel\nfine\t1\n")
    with pytest.raises(BertForgeError, match=r"'sentense' is not in .*'sentence', 'label'"):
        read_text_examples(path, text_column="sentense")
    with pytest.raises(BertForgeError, match="out of range"):
        read_text_examples(path, text_column=5)


def test_unguessable_columns_say_which_columns_exist(tmp_path):
    path = write(tmp_path, "d.tsv", "body\tstars\nfine\t1\n")
    with pytest.raises(BertForgeError, match=r"text_column=.*'body', 'stars'"):
        read_text_examples(path)


def test_empty_and_header_only_files_are_rejected(tmp_path):
    with pytest.raises(BertForgeError, match="empty"):
        read_text_examples(write(tmp_path, "e.tsv", "\n\n"))
    with pytest.raises(BertForgeError, match="header .* but no rows"):
        read_text_examples(write(tmp_path, "h.tsv", "sentence\tlabel\n"))
    with pytest.raises(BertForgeError, match="not found"):
        read_text_examples(tmp_path / "missing.tsv")


def test_malformed_rows_raise_with_file_and_line_or_are_skipped_and_counted(tmp_path):
    text = "sentence\tlabel\ngood\t1\nmissing label\nextra\t1\tfield\n\t0\nfine\t0\n"
    path = write(tmp_path, "d.tsv", text)
    with pytest.raises(BertForgeError, match=rf"{path}:3: 1 fields, expected 2"):
        read_text_examples(path)
    result = read_text_examples(path, on_error="skip")
    # the header names the columns: line 4's extra trailing field is read past and counted
    assert [e.text for e in result.examples] == ["good", "extra", "fine"]
    assert result.extra_fields == 1
    assert len(result.skipped) == 2
    assert [message.split(": ")[0] for message in result.skipped] == [f"{path}:3", f"{path}:5"]
    assert "empty text" in result.skipped[1]


def test_regression_label_that_is_not_a_number_is_malformed(tmp_path):
    path = write(tmp_path, "d.tsv", "sentence1\tsentence2\tscore\na\tb\t4.5\nc\td\tn/a\n")
    result = read_text_examples(path, regression=True, on_error="skip")
    assert [e.label for e in result.examples] == [4.5]
    assert "'n/a' is not a number" in result.skipped[0]


def test_regression_label_nan_or_inf_is_malformed(tmp_path):
    path = write(tmp_path, "d.tsv", "sentence\tscore\na\t4.5\nb\tnan\nc\t-inf\n")
    result = read_text_examples(path, regression=True, on_error="skip")
    assert [e.label for e in result.examples] == [4.5]
    assert result.skipped == [
        f"{path}:3: regression label 'nan' is not a finite number",
        f"{path}:4: regression label '-inf' is not a finite number",
    ]


def test_unknown_on_error_and_format_are_rejected(tmp_path):
    path = write(tmp_path, "d.tsv", "sentence\tlabel\na\t1\n")
    with pytest.raises(BertForgeError, match="unknown on_error 'ignore'"):
        read_text_examples(path, on_error="ignore")
    with pytest.raises(BertForgeError, match="unknown format 'xlsx'"):
        read_text_examples(path, format="xlsx")


# ---------------------------------------------------------------------------------------- tagging
CONLL_IOB1 = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- O O

In IN I-PP O
Paris NNP I-NP I-LOC
Rome NNP I-NP B-LOC
and CC O O
Hans NNP I-NP I-PER
"""


def test_conll2003_iob1_is_detected_and_converted_to_bio(tmp_path):
    result = read_tagged_examples(write(tmp_path, "eng.train", CONLL_IOB1))
    assert [(e.words, e.tags, e.line) for e in result.examples] == [
        (["EU", "rejects", "German", "call", "."], ["B-ORG", "O", "B-MISC", "O", "O"], 3),
        (["Peter", "Blackburn"], ["B-PER", "I-PER"], 9),
        (["In", "Paris", "Rome", "and", "Hans"], ["O", "B-LOC", "B-LOC", "O", "B-PER"], 14),
    ]
    assert label_list(result) == ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER"]


def test_conll_converts_to_bioes_and_back_to_the_original_iob1(tmp_path):
    path = write(tmp_path, "eng.train", CONLL_IOB1)
    bioes = read_tagged_examples(path, target_scheme="BIOES").examples
    assert bioes[1].tags == ["B-PER", "E-PER"] and bioes[2].tags == ["O", "S-LOC", "S-LOC", "O", "S-PER"]
    iob1 = read_tagged_examples(path, target_scheme="IOB1").examples
    assert iob1[2].tags == ["O", "I-LOC", "B-LOC", "O", "I-PER"]


def test_peoples_daily_char_tag_bio(tmp_path):
    text = "海 O\n钓 O\n在 O\n厦 B-LOC\n门 I-LOC\n\n周 B-PER\n恩 I-PER\n来 I-PER\n"
    result = read_tagged_examples(write(tmp_path, "example.dev", text))
    assert [(e.words, e.tags) for e in result.examples] == [
        (["海", "钓", "在", "厦", "门"], ["O", "O", "O", "B-LOC", "I-LOC"]),
        (["周", "恩", "来"], ["B-PER", "I-PER", "I-PER"]),
    ]


def test_conll_line_with_missing_column_is_reported_and_its_sentence_skipped(tmp_path):
    path = write(tmp_path, "d.conll", "a B-X\nb\nc O\n\nd O\n")
    with pytest.raises(BertForgeError, match=rf"{path}:2: 1 columns"):
        read_tagged_examples(path)
    result = read_tagged_examples(path, on_error="skip")
    assert [e.words for e in result.examples] == [["d"]]
    assert len(result.skipped) == 1


def test_tag_outside_the_given_scheme_is_malformed(tmp_path):
    path = write(tmp_path, "d.conll", "a E-X\n\nb B-X\n")
    with pytest.raises(BertForgeError, match="'E-X' is not a BIO tag"):
        read_tagged_examples(path, scheme="BIO")
    assert len(read_tagged_examples(path, scheme="BIO", on_error="skip").examples) == 1


def test_unknown_tag_scheme_is_rejected(tmp_path):
    path = write(tmp_path, "d.conll", "a O\n")
    with pytest.raises(BertForgeError, match="unknown tag scheme 'BILOU2'; choose from IOB1, BIO"):
        read_tagged_examples(path, scheme="BILOU2")
    with pytest.raises(BertForgeError, match="unknown tag scheme"):
        read_tagged_examples(path, target_scheme="xml")


def test_single_column_conll_is_unlabelled(tmp_path):
    result = read_tagged_examples(write(tmp_path, "test.txt", "Hello\nworld\n\nBye\n"))
    assert [(e.words, e.tags) for e in result.examples] == [(["Hello", "world"], None), (["Bye"], None)]


CLUENER = [
    {
        "text": "浙商银行企业信贷部叶老桂博士",
        "label": {"name": {"叶老桂": [[9, 11]]}, "company": {"浙商银行": [[0, 3]]}},
    },
    {"text": "生生不息CSOL生化狂潮", "label": {"game": {"CSOL": [[4, 7]]}}},
    {"text": "没有实体", "label": {}},
]


def test_cluener_spans_become_per_character_bio_tags(tmp_path):
    path = write(tmp_path, "train.json", "\n".join(json.dumps(r, ensure_ascii=False) for r in CLUENER))
    result = read_tagged_examples(path)
    first = result.examples[0]
    assert first.text == "浙商银行企业信贷部叶老桂博士" and first.words == list(first.text)
    assert first.tags == ["B-company", "I-company", "I-company", "I-company"] + ["O"] * 5 + [
        "B-name",
        "I-name",
        "I-name",
        "O",
        "O",
    ]
    assert result.examples[1].tags == ["O"] * 4 + ["B-game"] + ["I-game"] * 3 + ["O"] * 4
    assert result.examples[2].tags == ["O"] * 4
    assert [e.line for e in result.examples] == [1, 2, 3]
    bioes = read_tagged_examples(path, target_scheme="BIOES").examples[1]
    assert bioes.tags[4:8] == ["B-game", "I-game", "I-game", "E-game"]


def test_cluener_span_that_misses_its_entity_names_both_strings(tmp_path):
    record = {"text": "叶老桂认为", "label": {"name": {"叶老桂": [[1, 3]]}}}
    path = write(tmp_path, "bad.json", json.dumps(record, ensure_ascii=False) + "\n")
    with pytest.raises(
        BertForgeError, match=rf"{path}:1: name span \[1, 3\] is '老桂认' in the text, not '叶老桂'"
    ):
        read_tagged_examples(path)


def test_cluener_span_past_the_end_of_the_text_says_so(tmp_path):
    path = write(tmp_path, "bad.json", json.dumps({"text": "john", "label": {"PER": {"john": [[0, 9]]}}}))
    with pytest.raises(
        BertForgeError, match=rf"{path}:1: PER span \[0, 9\] of 'john' is outside the text's 4"
    ):
        read_tagged_examples(path)


def test_cluener_nested_entity_keeps_the_outer_one(tmp_path):
    record = {
        "text": "《招商银行年报》",
        "label": {"book": {"《招商银行年报》": [[0, 7]]}, "company": {"招商银行": [[1, 4]]}},
    }
    (example,) = read_tagged_examples(
        write(tmp_path, "n.json", json.dumps(record, ensure_ascii=False))
    ).examples
    assert example.tags == ["B-book"] + ["I-book"] * 7


def test_convert_tags_by_hand():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]
    assert convert_tags(iob1, "IOB1", "BIO") == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG"]
    assert convert_tags(iob1, "IOB1", "BIOES") == ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-ORG"]
    bioes = ["B-X", "I-X", "E-X", "S-X", "O", "S-Y"]
    assert convert_tags(bioes, "BIOES", "IOB1") == ["I-X", "I-X", "I-X", "B-X", "O", "I-Y"]
    assert convert_tags(convert_tags(bioes, "IOBES", "IOB2"), "BIO", "BIOES") == bioes
    with pytest.raises(BertForgeError, match="'S-X' is not a BIO tag"):
        convert_tags(["S-X"], "BIO", "BIOES")


def test_detect_scheme():
    assert detect_scheme([["I-PER", "O", "I-LOC", "B-LOC"]]) == "IOB1"
    assert detect_scheme([["B-PER", "I-PER", "O"], ["I-LOC"]]) == "BIO"  # headless I- in BIO stays BIO
    assert detect_scheme([["B-PER", "E-PER"]]) == "BIOES"
    assert detect_scheme([["O", "O"]]) == "BIO"


def test_get_entities_follows_seqeval_default_mode():
    seqeval = pytest.importorskip("seqeval.metrics.sequence_labeling")
    cases = [
        ["B-PER", "I-PER", "O", "B-LOC"],
        ["I-PER", "I-PER", "B-PER", "I-LOC", "O", "I-MISC"],
        ["B-X", "E-X", "S-Y", "I-Y", "E-Y", "E-Z", "S-Z"],
        ["O", "I-A", "B-A", "E-B", "S-A", "I-A", "B", "I", "O"],
    ]
    for tags in cases:
        assert get_entities(tags) == seqeval.get_entities(tags)


# ---------------------------------------------------------------------------------------------- QA
def squad(paragraphs: list[dict], version: str = "1.1") -> str:
    return json.dumps(
        {"version": version, "data": [{"title": "T", "paragraphs": paragraphs}]}, indent=2, ensure_ascii=False
    )


def test_squad_v11_reads_questions_and_answers(tmp_path):
    context = "Denver Broncos won Super Bowl 50."
    qas = [
        {
            "id": "q1",
            "question": "Who won?",
            "answers": [
                {"text": "Denver Broncos", "answer_start": 0},
                {"text": "Broncos", "answer_start": 7},
            ],
        }
    ]
    result = read_qa_examples(write(tmp_path, "dev.json", squad([{"context": context, "qas": qas}])))
    (example,) = result.examples
    assert (example.id, example.question, example.context, example.is_impossible) == (
        "q1",
        "Who won?",
        context,
        False,
    )
    assert example.answers == qas[0]["answers"]


def test_squad_v20_impossible_questions_have_no_answers(tmp_path):
    context = "Normandy is a region in France."
    qas = [
        {
            "id": "a",
            "question": "Where?",
            "answers": [{"text": "France", "answer_start": 24}],
            "is_impossible": False,
        },
        {
            "id": "b",
            "question": "Who?",
            "answers": [],
            "plausible_answers": [{"text": "Normandy", "answer_start": 0}],
            "is_impossible": True,
        },
    ]
    examples = read_qa_examples(
        write(tmp_path, "v2.json", squad([{"context": context, "qas": qas}], "v2.0"))
    ).examples
    assert [(e.id, e.answers, e.is_impossible) for e in examples] == [
        ("a", [{"text": "France", "answer_start": 24}], False),
        ("b", [], True),
    ]


def test_answer_that_does_not_match_names_question_both_strings_and_line(tmp_path):
    qas = [{"id": "bad_q", "question": "Who?", "answers": [{"text": "Paris", "answer_start": 0}]}]
    path = write(tmp_path, "d.json", squad([{"context": "He lives in Rome.", "qas": qas}]))
    with pytest.raises(
        BertForgeError, match=r"d.json:\d+: question 'bad_q': answer 'Paris' .* reads 'He li'"
    ):
        read_qa_examples(path)
    result = read_qa_examples(path, on_error="skip")
    assert result.examples == [] and "bad_q" in result.skipped[0]


def test_cmrc_style_answers_off_by_one_are_moved_and_unlocated_kept_as_references(tmp_path):
    context = "曹操决定灭司马家族，然后回家。"
    answers = [
        {"text": "司马家族", "answer_start": 4},  # off by one: really at 5
        {"text": "消灭司马家族", "answer_start": -1},  # annotator's reference, not in the context
    ]
    qas = [{"id": "DEV_1_QUERY_0", "question": "曹操决定做什么？", "answers": answers}]
    (example,) = read_qa_examples(
        write(tmp_path, "cmrc.json", squad([{"id": "DEV_1", "context": context, "qas": qas}]))
    ).examples
    assert example.answers == [
        {"text": "司马家族", "answer_start": 5},
        {"text": "消灭司马家族", "answer_start": -1},
    ]


def test_text_only_reference_first_is_moved_behind_a_located_answer(tmp_path):
    qas = [
        {
            "id": "q",
            "question": "?",
            "answers": [{"text": "xyz", "answer_start": -1}, {"text": "Rome", "answer_start": 12}],
        }
    ]
    (example,) = read_qa_examples(
        write(tmp_path, "d.json", squad([{"context": "He lives in Rome.", "qas": qas}]))
    ).examples
    assert [a["text"] for a in example.answers] == ["Rome", "xyz"]


def test_qa_jsonl_in_hugging_face_column_layout(tmp_path):
    record = {
        "id": "1",
        "question": "Where?",
        "context": "In Rome.",
        "answers": {"text": ["Rome"], "answer_start": [3]},
    }
    (example,) = read_qa_examples(write(tmp_path, "d.jsonl", json.dumps(record) + "\n")).examples
    assert example.answers == [{"text": "Rome", "answer_start": 3}]


def test_qa_duplicate_ids_and_empty_file(tmp_path):
    qas = [{"id": "q", "question": "?", "answers": [{"text": "a", "answer_start": 0}]}] * 2
    with pytest.raises(BertForgeError, match="'q' appears twice"):
        read_qa_examples(write(tmp_path, "d.json", squad([{"context": "a b", "qas": qas}])))
    with pytest.raises(BertForgeError, match="empty"):
        read_qa_examples(write(tmp_path, "e.json", ""))


def test_json_without_data_or_questions_is_not_squad(tmp_path):
    path = write(tmp_path, "d.json", json.dumps({"version": "v2.0", "articles": []}, indent=2))
    with pytest.raises(
        BertForgeError, match=f"{path} is not SQuAD JSON: it has no \"data\" list .*'articles'"
    ):
        read_qa_examples(path)


# ----------------------------------------------------------------------------------- multiple choice
def test_swag_csv(tmp_path):
    text = (
        "video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label\n"
        'anetv_1,5,"Members of the group sit. A man","Members of the group sit.",A man,gold,'
        "walks away.,sings.,jumps.,sleeps.,2\n"
    )
    (example,) = read_choice_examples(write(tmp_path, "swag.csv", text)).examples
    assert example.context == "Members of the group sit."
    assert example.question == "A man"
    assert example.endings == ["walks away.", "sings.", "jumps.", "sleeps."]
    assert (example.label, example.line) == (2, 2)


def test_choice_jsonl_and_letter_labels(tmp_path):
    rows = [
        {"context": "The sky is", "endings": ["blue", "loud"], "label": 0},
        {"context": "Fire is", "question": "", "endings": ["cold", "hot"], "label": "B"},
    ]
    result = read_choice_examples(write(tmp_path, "c.jsonl", "\n".join(json.dumps(r) for r in rows)))
    assert [(e.context, e.endings, e.label) for e in result.examples] == [
        ("The sky is", ["blue", "loud"], 0),
        ("Fire is", ["cold", "hot"], 1),
    ]
    assert label_list(result) == ["0", "1"]
    test = read_choice_examples(
        write(tmp_path, "t.jsonl", json.dumps({"startphrase": "A man", "endings": ["a", "b"]}))
    )
    assert [(e.context, e.label) for e in test.examples] == [("A man", None)]


def test_choice_label_out_of_range_and_ending_count_are_malformed(tmp_path):
    rows = [
        {"context": "c", "endings": ["a", "b"], "label": 5},
        {"context": "c", "endings": ["a", "b"], "label": 1},
        {"context": "c", "endings": ["a"], "label": 0},
    ]
    path = write(tmp_path, "c.jsonl", "\n".join(json.dumps(r) for r in rows))
    with pytest.raises(BertForgeError, match=rf"{path}:1: label 5 is not an ending index 0..1"):
        read_choice_examples(path)
    result = read_choice_examples(path, on_error="skip")
    assert len(result.examples) == 1 and "1 endings, the first row has 2" in result.skipped[1]


def test_non_choice_file_lists_its_columns(tmp_path):
    with pytest.raises(BertForgeError, match=r"not SWAG-style.*'sentence', 'label'"):
        read_choice_examples(write(tmp_path, "d.csv", "sentence,label\na,1\n"))
