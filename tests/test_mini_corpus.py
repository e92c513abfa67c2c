import shutil
from pathlib import Path

import pytest

from ee_asr.corpora.mini_tts import make_corpus, plan_corpus
from ee_asr.corpora.sentences import fragments, narrow_domain, normalize, overlaps, read_pool, read_raw, top_words
from ee_asr.corpora.voices import train_and_test_speakers, unseen_dev_speakers
from ee_asr.data.datadir import read_dict, validate_data_dir

needs_tts = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                               reason="espeak-ng and sox are not installed (make system-deps)")


def test_normalize_keeps_only_plain_words():
    assert normalize("Hello, World!") == "hello world"
    assert normalize("it's 5 o'clock") is None
    assert normalize("don't stop") == "don't stop"


def test_plan_holds_out_test_speakers_and_sentences():
    sentences = [f"sentence number {i} here" for i in range(100)]
    train_spk, test_spk = train_and_test_speakers(20, 5, seed=3)
    assert not {s.id for s in train_spk} & {s.id for s in test_spk}
    plan = plan_corpus(sentences, train_spk, test_spk, 200, 20, 20, n_heldout_sents=10, seed=3)
    train_text = {u.text for u in plan["train"]}
    assert not train_text & {u.text for u in plan["test"]}
    assert not train_text & {u.text for u in plan["dev"]}
    assert {u.speaker for u in plan["test"]} <= set(test_spk)
    again = plan_corpus(sentences, *train_and_test_speakers(20, 5, seed=3), 200, 20, 20, 10, seed=3)
    assert [u.utt_id for u in again["train"]] == [u.utt_id for u in plan["train"]]


def test_dev_unseen_speaks_dev_sentences_in_voices_neither_train_nor_test_uses():
    sentences = [f"sentence number {i} here" for i in range(100)]
    train_spk, test_spk = train_and_test_speakers(20, 5, seed=3)
    unseen = unseen_dev_speakers(6, seed=3)
    ids = {s.id for s in unseen}
    assert len(ids) == 6 and not ids & {s.id for s in train_spk} and not ids & {s.id for s in test_spk}
    base = plan_corpus(sentences, train_spk, test_spk, 200, 20, 20, n_heldout_sents=10, seed=3)
    plan = plan_corpus(sentences, train_spk, test_spk, 200, 20, 20, n_heldout_sents=10, seed=3,
                       unseen_speakers=unseen, n_dev_unseen=30)
    assert "dev_unseen" not in base and len(plan["dev_unseen"]) == 30
    texts = {u.text for u in plan["dev_unseen"]}  # dev's held-out sentences: in neither train nor test
    assert texts & {u.text for u in plan["dev"]} and not texts & {u.text for u in plan["train"] + plan["test"]}
    assert {u.speaker for u in plan["dev_unseen"]} <= set(unseen)
    for split in ("train", "dev", "test"):  # the other splits are as they were without it
        assert [(u.utt_id, u.text) for u in plan[split]] == [(u.utt_id, u.text) for u in base[split]]


@needs_tts
def test_tiny_corpus_is_valid_and_deterministic(tmp_path):
    text = tmp_path / "sents.txt"
    text.write_text("\n".join(f"the cat sat on mat number {w}" for w in
                              "one two three four five six seven eight nine ten eleven twelve".split()) + "\n")
    counts = make_corpus(tmp_path / "data", tmp_path / "wav", 8, 2, 2, vocab_size=100, n_heldout_sents=2,
                         n_train_espeak=3, n_test_espeak=2, seed=5, nj=2, text_file=text)
    assert counts == {"train": 8, "dev": 2, "test": 2}
    for split in ("train", "dev", "test"):
        validate_data_dir(tmp_path / "data" / split)
    first = {p.name: p.read_bytes() for p in (tmp_path / "wav" / "train").glob("*.wav")}
    shutil.rmtree(tmp_path / "wav")
    make_corpus(tmp_path / "data2", tmp_path / "wav", 8, 2, 2, vocab_size=100, n_heldout_sents=2,
                n_train_espeak=3, n_test_espeak=2, seed=5, nj=1, text_file=text)
    second = {p.name: p.read_bytes() for p in (tmp_path / "wav" / "train").glob("*.wav")}
    assert first == second
    assert read_dict(tmp_path / "data" / "train" / "text") == read_dict(tmp_path / "data2" / "train" / "text")


@needs_tts
def test_rerun_with_other_sentences_never_reuses_audio_of_another_text(tmp_path):
    def corpus(name, word):
        text = tmp_path / f"{name}.txt"
        text.write_text("\n".join(f"the cat sat on {word} mat number {n}" for n in
                                  "one two three four five six seven eight".split()) + "\n")
        make_corpus(tmp_path / name, tmp_path / "wav", 6, 2, 2, vocab_size=100, n_heldout_sents=2,
                    n_train_espeak=3, n_test_espeak=2, seed=5, nj=2, text_file=text)
        return read_dict(tmp_path / name / "train" / "text"), read_dict(tmp_path / name / "train" / "wav.scp")

    text1, wavs1 = corpus("first", "red")
    text2, wavs2 = corpus("second", "blue")
    assert text1.keys() == text2.keys()  # the same utterance ids, now with other texts
    for utt in text1:
        assert text1[utt] != text2[utt]
        assert wavs1[utt] != wavs2[utt]
    assert all(Path(p).exists() for p in [*wavs1.values(), *wavs2.values()])


def test_debian_text_pool_when_installed():
    try:
        raw = read_raw()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"no Debian text installed: {e}")
    pool = read_pool(raw)
    vocab = top_words(pool, 1000)
    narrow = narrow_domain(pool, vocab)
    assert len(narrow) > 1000
    assert all(4 <= len(s.split()) <= 12 for s in narrow)
    extra = fragments(raw, vocab)
    assert len(set(extra) - set(narrow)) > 5 * len(narrow)
    assert all(4 <= len(s.split()) <= 12 and set(s.split()) <= vocab for s in extra)


def test_fragments_are_in_vocabulary_runs_split_at_punctuation():
    vocab = set("the cat sat on a mat and dog ran far away".split())
    raw = ["The cat sat on a mat, and the dog ran far away!", "a zebra sat on the mat and ran"]
    assert fragments(raw, vocab) == ["and the dog ran far away", "sat on the mat and ran", "the cat sat on a mat"]
    words = [f"w{chr(97 + i)}" for i in range(26)]
    # a 26-word run gives two 12-word texts; its 2-word tail is too short to keep
    assert sorted(len(f.split()) for f in fragments([" ".join(words)], set(words))) == [12, 12]


def test_overlaps_on_word_boundaries():
    held = ["we like to plan ahead"]
    assert overlaps("like to plan", held)                    # inside a held-out sentence
    assert overlaps("so we like to plan ahead now", held)    # holds a held-out sentence
    assert not overlaps("we like to plant", held)            # "plan" is not "plant"
    assert not overlaps("to plan ahead of time", held)


def test_training_fragments_never_leak_held_out_text():
    sentences = [f"sentence number {i} here" for i in range(100)]
    extra = [f"number {i} here and there" for i in range(100)] + ["fresh text for training only"]
    train_spk, test_spk = train_and_test_speakers(20, 5, seed=3)
    plain = plan_corpus(sentences, train_spk, test_spk, 150, 20, 20, n_heldout_sents=10, seed=3)
    plan = plan_corpus(sentences, train_spk, test_spk, 150, 20, 20, n_heldout_sents=10, seed=3,
                       extra_train=extra)
    held = {u.text for split in ("dev", "test") for u in plan[split]}
    train_text = {u.text for u in plan["train"]}
    assert not any(overlaps(t, held) for t in train_text)
    assert train_text & set(extra)  # fragments of other sentences are used
    # training options leave dev and test as they were, utterance by utterance
    for split in ("dev", "test"):
        assert [(u.utt_id, u.text) for u in plan[split]] == [(u.utt_id, u.text) for u in plain[split]]
    fewer = plan_corpus(sentences, train_spk, test_spk, 40, 20, 20, n_heldout_sents=10, seed=3)
    assert [(u.utt_id, u.text) for u in fewer["test"]] == [(u.utt_id, u.text) for u in plain["test"]]


def test_test_speakers_do_not_depend_on_the_training_speakers():
    _, test_60 = train_and_test_speakers(60, 12, seed=1)
    train_150, test_150 = train_and_test_speakers(150, 12, seed=1)
    assert test_60 == test_150 and len({s.id for s in train_150}) == len(train_150)
