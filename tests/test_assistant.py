"""The `assistant` graph from Python and the terminal: conversations, new images, the pause before looking,
live tokens, SQLite threads. Real generate calls on tiny models (the reasoner forced by script)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from agent import prompts
from graphs.api import AskOptions, ExtractThink
from graphs.conversation import ChatTurn, Token, sqlite_checkpointer
from tools.tiny.forced import Script, think, tool_call
from tools.backends.hf_reasoner import TransformersReasoner

FAST = AskOptions(greedy=True, perceiver_max_new_tokens=8, max_extractions=2)


@pytest.fixture(autouse=True)
def image_store(tmp_path, monkeypatch):
    monkeypatch.setenv("XTHINK_IMAGE_STORE", str(tmp_path / "store"))


def agent_with(tiny, script: Script, **kwargs) -> ExtractThink:
    reasoner = TransformersReasoner(str(tiny.reasoner), extra_logits_processors=script)
    return ExtractThink(reasoner=reasoner, perceiver=str(tiny.perceivers["llava_onevision"]), device="cpu", **kwargs)


def test_follow_up_reuses_earlier_extractions_and_new_images_get_next_ids(tiny, image_path, second_image):
    script = Script(
        tool_call("the colour of the square"), "Answer: red",
        "I described it before.\nAnswer: red",
        tool_call("the new image's colour", image="image_2"), "Answer: blue",
    )  # fmt: skip
    agent = agent_with(tiny, script)
    first = agent.chat("What colour is the square?", [image_path], thread_id="t", settings=FAST)
    assert first.result.extraction_calls == 1 and first.reply == "Answer: red"
    second = agent.chat("And what colour was it again?", thread_id="t", settings=FAST)
    assert second.result.extraction_calls == 0 and [s.kind for s in second.result.steps] == ["reason"]
    seen = script.requests[2].messages
    assert [m.role for m in seen] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert seen[3].content == first.result.steps[1].output, "the earlier extraction is in the reasoner's context"
    assert seen[-1].content.startswith("Follow-up question: And what colour was it again?")
    assert second.result.steps[0].cached_tokens > 0, "the conversation's keys/values are reused"
    third = agent.chat("What about this one?", [second_image], thread_id="t", settings=FAST)
    assert [i.id for i in third.result.images] == ["image_1", "image_2"]
    assert script.requests[3].messages[-1].content.startswith("New images: image_2 (64x96)")
    assert third.result.steps[1].image_id == "image_2" and third.result.extraction_calls == 1
    assert not script.texts


def test_budget_applies_per_turn(tiny, image_path):
    one = AskOptions(greedy=True, perceiver_max_new_tokens=8, max_extractions=1)
    script = Script(tool_call("a"), "Answer: x", tool_call("b"), "Answer: y")
    agent = agent_with(tiny, script)
    agent.chat("First?", [image_path], thread_id="b", settings=one)
    second = agent.chat("Second?", thread_id="b", settings=one)
    assert second.result.extraction_calls == 1 and second.result.budget_spent


def test_pause_edit_and_refuse_before_extraction(tiny, image_path):
    script = Script(tool_call("the colour"), "Answer: red", tool_call("the shape"), "Answer: square")
    agent = agent_with(tiny, script)
    paused = agent.chat("What colour?", [image_path], thread_id="i", settings=FAST, interrupt_before_extract=True)
    assert paused.interrupt["request"] == "the colour" and paused.interrupt["kind"] == "extract"
    done = agent.resume("i", {"action": "edit", "request": "the colour of the square's border"})
    step = done.result.steps[1]
    assert step.request == "the colour of the square's border" and step.review == "edited"
    assert step.instruction.endswith("pay attention to the colour of the square's border.")
    told = [m.content for m in script.requests[1].messages if m.role == "tool"][0]
    assert told.startswith(prompts.edited_note("the colour of the square's border"))
    paused = agent.chat("What shape?", thread_id="i", settings=FAST, interrupt_before_extract=True)
    assert paused.interrupt["request"] == "the shape"
    refused = agent.resume("i", {"action": "refuse", "reason": "not needed"})
    assert refused.result.extraction_calls == 0 and refused.result.steps[1].review == "refused"
    told = [m.content for m in script.requests[3].messages if m.role == "tool"][-1]
    assert told == prompts.refused("not needed")


def test_tokens_stream_while_generating(tiny, image_path):
    script = Script(think("I need the colour.") + tool_call("the colour"), think("Red.") + "Answer: red")
    events = list(agent_with(tiny, script).chat_stream("Colour?", [image_path], thread_id="s", settings=FAST))
    tokens = [e for e in events if isinstance(e, Token)]
    steps = [e for e in events if not isinstance(e, (Token, ChatTurn))]
    thinking = "".join(t.text for t in tokens if t.phase == "thinking")
    assert thinking.split() == ["I", "need", "the", "colour.", "Red."]
    answer = "".join(t.text for t in tokens if t.phase == "answer")
    assert "Answer: red" in answer and "<tool_call>" in answer
    assert [s.kind for s in steps] == ["reason", "extract", "reason"]
    assert events.index(tokens[0]) < events.index(steps[0]), "tokens arrive before their step is done"
    assert isinstance(events[-1], ChatTurn) and events[-1].reply == "Answer: red"


def test_unusable_input_is_answered_and_the_thread_goes_on(tiny, image_path, tmp_path):
    agent = agent_with(tiny, Script("Answer: red"))
    bad = {"role": "user", "content": [{"type": "text", "text": "hi"},
                                       {"type": "image_url", "image_url": {"url": "data:image/png;base64,!!"}}]}
    graph = agent._assistant()
    from graphs.conversation import TurnSettings, run_turn

    turn = list(run_turn(agent, graph, {"messages": [bad]}, "bad", TurnSettings(settings=FAST)))[-1]
    assert turn.error and "base64" in turn.error and turn.result is None
    good = agent.chat("What colour?", [image_path], thread_id="bad", settings=FAST)
    assert good.error is None and good.reply == "Answer: red"
    values = graph.get_state({"configurable": {"thread_id": "bad"}}).values
    assert "base64," not in repr(values), "no pixels in state"


def test_sqlite_thread_survives_a_new_process_object(tiny, image_path, tmp_path):
    db = tmp_path / "chats.sqlite"
    first = agent_with(tiny, Script(tool_call("the colour"), "Answer: red"), checkpointer=sqlite_checkpointer(db))
    first.chat("What colour?", [image_path], thread_id="keep", settings=FAST)
    script = Script("Answer: still red")
    later = agent_with(tiny, script, checkpointer=sqlite_checkpointer(db))
    turn = later.chat("Still?", thread_id="keep", settings=FAST)
    assert turn.reply == "Answer: still red"
    assert [m.role for m in script.requests[0].messages] == ["system", "user", "assistant", "tool", "assistant", "user"]


def test_chat_cli_session_and_coming_back(tiny, image_path, second_image, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XTHINK_IMAGE_STORE": str(tmp_path / "store")}
    base = [sys.executable, "-m", "graphs.cli.app", "chat", "--reasoner", str(tiny.reasoner), "--perceiver",
            str(tiny.perceivers["llava_onevision"]), "--greedy", "--max-new-tokens", "12", "--thinking-budget", "6",
            "--perceiver-max-new-tokens", "6", "--max-extractions", "1", "--device", "cpu",
            "--thread", "demo", "--db", str(tmp_path / "c.sqlite")]
    lines = f"What colour?\n/image {second_image}\n/image missing.png\nAnd this?\n/mode caption\nDescribe.\n" \
            f"/mode nonsense\n/trace {tmp_path / 't1.json'}\n/quit\n"  # fmt: skip
    proc = subprocess.run([*base, str(image_path)], input=lines, env=env, capture_output=True, text=True,
                          timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("assistant>") == 3 and "no image file 'missing.png'" in proc.stdout
    assert "unknown mode 'nonsense'" in proc.stdout and "Traceback" not in proc.stderr
    from agent.trace import Result

    last = Result.model_validate_json((tmp_path / "t1.json").read_text())
    assert last.mode == "caption" and [i.id for i in last.images] == ["image_1", "image_2"]
    again = subprocess.run(base, input=f"Once more?\n/trace {tmp_path / 't2.json'}\n", env=env, capture_output=True,
                           text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert again.returncode == 0, again.stderr[-2000:]
    back = Result.model_validate_json((tmp_path / "t2.json").read_text())
    assert [i.id for i in back.images] == ["image_1", "image_2"], "the thread came back from the SQLite file"
    assert back.mode == "iterative" and back.steps[0].cached_tokens == 0  # a new process: nothing cached yet


def test_langchain_image_block_and_state_without_pixels(tiny, image_path):
    agent = agent_with(tiny, Script("Answer: red"))
    data = base64.b64encode(Path(image_path).read_bytes()).decode()
    message = {"role": "user", "content": [{"type": "text", "text": "Colour?"},
                                           {"type": "image", "base64": data, "mime_type": "image/png"}]}
    from graphs.conversation import TurnSettings, run_turn

    turn = list(run_turn(agent, agent._assistant(), {"messages": [message]}, "lc", TurnSettings(settings=FAST)))[-1]
    assert turn.error is None and turn.result.images[0].width == Image.open(image_path).width
    values = agent._assistant().get_state({"configurable": {"thread_id": "lc"}}).values
    stored = values["messages"][0].content[1]
    assert stored["type"] == "image" and stored["image_id"] == "image_1" and "base64" not in stored
    assert data[:40] not in repr(values)


def test_a_resume_without_the_flag_still_applies_the_decision(tiny, image_path):
    """LangGraph Server clients may resume with a different (or no) context: the turn's pause setting is
    kept in state, so the refusal is applied rather than the proposed call run."""
    from langgraph.types import Command

    from graphs.conversation import TurnSettings, run_turn

    script = Script(tool_call("the colour"), "Answer: unknown")
    agent = agent_with(tiny, script)
    paused = agent.chat("What colour?", [image_path], thread_id="r", settings=FAST, interrupt_before_extract=True)
    assert paused.interrupt is not None
    plain = TurnSettings(settings=FAST, interrupt_before_extract=False)
    done = list(run_turn(agent, agent._assistant(), Command(resume=False), "r", plain))[-1]
    assert done.result.extraction_calls == 0 and done.result.steps[1].review == "refused"


def test_allowed_models_limit_what_a_context_can_name(monkeypatch):
    from agent.context import allowed
    from agent.settings import InputError

    monkeypatch.delenv("XTHINK_ALLOWED_MODELS", raising=False)
    assert allowed("http://169.254.169.254/v1") == "http://169.254.169.254/v1", "unset: any model (langgraph dev)"
    monkeypatch.setenv("XTHINK_ALLOWED_MODELS", "Qwen/Qwen3-4B, ./models/mine")
    monkeypatch.setenv("XTHINK_REASONER", "./models/reasoner")
    assert allowed("./models/mine") == "./models/mine" and allowed("./models/reasoner") == "./models/reasoner"
    assert allowed(None) is None
    with pytest.raises(InputError, match="not allowed"):
        allowed("http://169.254.169.254/v1")


def test_close_releases_the_store_it_opened_and_leaves_a_passed_one_open(tiny, image_path, tmp_path):
    import sqlite3

    owned = agent_with(tiny, Script("Answer: red"), checkpointer=tmp_path / "owned.sqlite")
    assert owned.chat("What colour?", [image_path], thread_id="t", settings=FAST).reply == "Answer: red"
    owned.close()
    with pytest.raises(sqlite3.ProgrammingError):
        owned.checkpointer.conn.execute("SELECT 1")
    passed = sqlite_checkpointer(tmp_path / "passed.sqlite")
    with agent_with(tiny, Script("Answer: blue"), checkpointer=passed) as agent:
        assert agent.chat("What colour?", [image_path], thread_id="t", settings=FAST).reply == "Answer: blue"
    assert passed.conn.execute("SELECT 1").fetchone() == (1,), "a checkpointer passed in is its owner's to close"
