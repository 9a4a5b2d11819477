"""Activity recording: the recorder facade and its parts (guild cache, member cache, write-behind batcher)."""

from bot.recording.recorder import ActivityRecorder
from bot.recording.state import GuildState, MemberState, RecordResult, zone

__all__ = ["ActivityRecorder", "GuildState", "MemberState", "RecordResult", "zone"]
