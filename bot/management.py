"""What moderators can change: achievements, tiers, settings, member data. Validated, audited, atomic.

Discord-free, so every rule here is tested without a client; the cogs only translate options and replies.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from bot.clock import Clock
from bot.engine.achievements import (
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_POINTS,
    MIN_POINTS,
    Achievement,
    name_key,
    slugify,
)
from bot.engine.conditions import BUILTIN_STATS, HOUR, Condition, ConditionError, parse_condition
from bot.engine.stats import Activity, ActivityKind
from bot.engine.tiers import Tier
from bot.errors import UserFacingError
from bot.export import ExportFile, ExportFormat, write_export
from bot.ownership import Ownership
from bot.recorder import ActivityRecorder, RecordResult
from bot.scheduler import Scheduler
from bot.storage import Storage

log = logging.getLogger(__name__)

MAX_STAT_AMOUNT = 1000
MAX_TIER_POINTS = 10_000_000
MAX_TIER_NAME = 32
MAX_BADGE = 64
MAX_TIERS = 20  # keeps /tier list and /settings show inside Discord's embed limits
# Each activity evaluates the rules reading the stats it changed, and each change of an achievement
# reloads and walks them all: a few hundred keeps both well inside a message's budget.
MAX_ACHIEVEMENTS = 300
# Holders settled per transaction when an achievement is removed or its points change: other guilds'
# commits wait for the write lock at most one chunk (~0.1 s), not the whole guild (12-28 s at 1M members).
BULK_CHUNK = 5000
# Dates a time window may use. Far beyond any event, and far from year 1 and 9999, where moving to UTC
# or to the end of the day leaves Python's calendar.
FIRST_YEAR, LAST_YEAR = 2000, 2999
MAX_COOLDOWN = 3600
MAX_MIN_LENGTH = 200
CUSTOM_STAT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# Counted by the bot itself: a moderator cannot award these by hand.
AUTOMATIC_STATS = frozenset(BUILTIN_STATS) | {HOUR}
TOO_HARD_FACTOR = 10
_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2}):(\d{2}))?\s*$")


@dataclass(frozen=True, slots=True)
class AchievementPreview:
    achievement: Achievement
    meeting: int  # stored members who already meet the condition (they get it in the background)
    members: int
    warnings: list[str] = field(default_factory=list)


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


# Entries of the zone database that are not places: the host's own zone (it changes with the machine),
# the "Factory" placeholder (abbreviation "-00"), the POSIX rules template, and the copies of every zone
# under posix/ and right/ (leap-second clocks).
_NOT_PLACES = frozenset({"localtime", "factory", "posixrules"})
_NOT_PLACE_FOLDERS = ("posix/", "right/", "systemv/")


def _is_place(name: str) -> bool:
    lowered = name.lower()
    return lowered not in _NOT_PLACES and not lowered.startswith(_NOT_PLACE_FOLDERS)


def timezone_names() -> list[str]:
    return sorted(name for name in _timezones() if _is_place(name))


def check_timezone(name: str) -> str:
    name = name.strip()
    if name.upper() == "UTC":
        return "UTC"
    if name not in _timezones() or not _is_place(name):
        raise UserFacingError(
            f"`{name[:64]}` is not a timezone I know. Use an IANA name such as `Europe/Paris`, "
            "`America/New_York` or `Asia/Kolkata` (the autocomplete lists them)."
        )
    return name


def parse_local_datetime(text: str, tz: ZoneInfo, *, end_of_day: bool, what: str) -> datetime:
    """`YYYY-MM-DD` or `YYYY-MM-DD HH:MM` in the guild's timezone, as UTC. A bare end date means the
    end of that day."""
    match = _DATE.match(text)
    if not match:
        raise UserFacingError(f"{what} must look like `2026-12-24` or `2026-12-24 18:00`, not `{text[:40]}`.")
    year, month, day, hour, minute = match.groups()
    if not FIRST_YEAR <= int(year) <= LAST_YEAR:
        raise UserFacingError(
            f"{what} `{text.strip()[:40]}` is out of range: use a year from {FIRST_YEAR} to {LAST_YEAR}."
        )
    try:
        if hour is None:
            local = datetime.combine(date(int(year), int(month), int(day)), time(0), tzinfo=tz)
            if end_of_day:
                local += timedelta(days=1)
        else:
            local = datetime(int(year), int(month), int(day), int(hour), int(minute), tzinfo=tz)
    except ValueError as exc:
        raise UserFacingError(f"{what} `{text.strip()}` is not a real date or time ({exc}).") from exc
    return local.astimezone(ZoneInfo("UTC"))


def condition_error_text(text: str, error: ConditionError) -> str:
    pointer = " " * max(0, min(error.column - 1, len(text))) + "^"
    shown = text.replace("`", "'")
    return f"The condition has an error: {error}\n```\n{shown}\n{pointer}\n```"


def _check_text(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise UserFacingError(f"The {what} cannot be empty.")
    if len(value) > limit:
        raise UserFacingError(f"The {what} is {len(value)} characters long; the limit is {limit}.")
    if any((unicodedata.category(c) == "Cc" and c not in "\n\t") or c in _BIDI_CONTROLS for c in value):
        raise UserFacingError(f"The {what} contains control or text-direction characters; type it plainly.")
    return value


# Characters that change the direction of the text around them: a name could display as another.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters and symbols by category that show as nothing (Hangul fillers, the Braille blank, ...).
_BLANK_LOOKALIKES = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180e")


def _is_invisible(text: str, i: int) -> bool:
    char = text[i]
    if char == "\u200d" and 0 < i < len(text) - 1:
        # The zero-width joiner is part of emoji such as 👩‍💻; between letters it only hides a difference.
        before, after = text[i - 1], text[i + 1]
        return not ((unicodedata.category(before) in ("So", "Sk") or before == "\ufe0f")
                    and unicodedata.category(after) == "So")
    category = unicodedata.category(char)
    return category in ("Cf", "Cc", "Co", "Cs", "Cn", "Zl", "Zp") or char in _BLANK_LOOKALIKES


def _check_name(value: str, what: str, limit: int) -> str:
    """A name people can read and tell apart: no invisible characters (`Chatter\u200bbox` would pass for
    `Chatterbox`), no text-direction overrides, and something visible in it."""
    value = _check_text(value, what, limit)
    if any(_is_invisible(value, i) for i in range(len(value))):
        raise UserFacingError(
            f"The {what} contains invisible characters (such as zero-width spaces or direction marks); "
            "type it with visible characters only."
        )
    if all(c.isspace() or unicodedata.category(c).startswith(("M", "Z")) for c in value):
        raise UserFacingError(f"The {what} needs at least one visible letter, digit or symbol.")
    return value


class Management:
    def __init__(self, storage: Storage, recorder: ActivityRecorder, scheduler: Scheduler, clock: Clock, *,
                 bulk_chunk: int = BULK_CHUNK, ownership: Ownership | None = None) -> None:
        self.storage = storage
        self.ownership = ownership or Ownership.everything()
        self.bulk_chunk = bulk_chunk
        self.recorder = recorder
        self.scheduler = scheduler
        self.clock = clock

    async def _audit(self, guild_id: int, actor_id: int, action: str, detail: str) -> None:
        async with self.storage.db.transaction() as conn:
            await self.storage.audit.add(conn, guild_id, actor_id, action, detail, self.clock.now())

    async def known_stats(self, guild_id: int) -> list[str]:
        """Stat names members of this guild can have: built-in ones and the custom ones in use."""
        state = await self.recorder.guild(guild_id)
        custom = set(await self.storage.members.custom_stat_names(guild_id))
        for achievement in state.rulebook.achievements:
            custom |= achievement.condition.stats
        return [*BUILTIN_STATS, *sorted(custom - set(BUILTIN_STATS))]

    async def parse(self, guild_id: int, text: str) -> Condition:
        try:
            return parse_condition(text, known_stats=await self.known_stats(guild_id))
        except ConditionError as exc:
            raise UserFacingError(condition_error_text(text, exc)) from exc

    async def find(self, guild_id: int, achievement_id: str) -> Achievement:
        state = await self.recorder.guild(guild_id)
        key = achievement_id.strip()
        wanted = name_key(key)
        found = state.rulebook.by_id.get(key) or next(
            (a for a in state.rulebook.achievements if name_key(a.name) == wanted), None
        )
        if found is None:
            raise UserFacingError(f"There is no achievement `{key[:60]}` here. Pick one from the list.")
        return found

    # ------------------------------------------------------------------ achievements
    async def add_achievement(
        self, guild_id: int, actor_id: int, *, name: str, description: str, points: int, condition: str,
        hidden: bool = False, starts: str | None = None, ends: str | None = None, role_id: int | None = None,
    ) -> AchievementPreview:
        state = await self.recorder.guild(guild_id)
        name = _check_name(name, "name", MAX_NAME)
        description = _check_text(description, "description", MAX_DESCRIPTION)
        self._check_points(points)
        await self._check_room(guild_id)  # early, before the preview's walk
        parsed = await self.parse(guild_id, condition)
        start_at, end_at = self._window(state.tz, starts, ends)
        await self._check_name_free(guild_id, name)  # early, before the preview's walk
        achievement = Achievement(await self._free_id(guild_id, name), name, description, points, parsed, hidden,
                                  start_at, end_at, role_id)
        preview = await self._preview(guild_id, achievement)
        async with self.storage.db.transaction() as conn:
            # Checked again inside the transaction: another moderator may have added one meanwhile, and
            # the id must not silently replace theirs.
            await self._check_room(guild_id)
            await self._check_name_free(guild_id, name)
            achievement = replace(achievement, id=await self._free_id(guild_id, name))
            preview = replace(preview, achievement=achievement)
            await self.storage.achievements.save(conn, guild_id, achievement, self.clock.now())
            await self.scheduler.record_retroactive(conn, guild_id, [achievement])
            detail = f"{achievement.id}: {name} ({points} pts) when {parsed.text}"
            await self.storage.audit.add(conn, guild_id, actor_id, "achievement.add", detail, self.clock.now())
        await self.recorder.reload_guild(guild_id)
        await self.scheduler.start_retroactive(guild_id, [achievement])
        return preview

    async def edit_achievement(
        self, guild_id: int, actor_id: int, achievement_id: str, *, name: str | None = None,
        description: str | None = None, points: int | None = None, condition: str | None = None,
        hidden: bool | None = None, starts: str | None = None, ends: str | None = None,
        role_id: int | None = None, clear_window: bool = False, clear_role: bool = False,
    ) -> AchievementPreview:
        """Change the options given, on the achievement as stored when the change is applied: edits of a
        guild's achievements run one at a time, so two moderators' edits both land, and holders' totals
        follow the stored points whatever the order."""
        state = await self.recorder.guild(guild_id)
        current = await self.find(guild_id, achievement_id)
        changes: dict[str, Any] = {}
        if name is not None:
            name = _check_name(name, "name", MAX_NAME)
            if await self.storage.achievements.name_taken(guild_id, name, except_id=current.id):
                raise UserFacingError(f"Another achievement is already named **{name}**.")
            changes["name"] = name
        if description is not None:
            changes["description"] = _check_text(description, "description", MAX_DESCRIPTION)
        if points is not None:
            self._check_points(points)
            changes["points"] = points
        if condition is not None:
            changes["condition"] = await self.parse(guild_id, condition)
        if hidden is not None:
            changes["hidden"] = hidden
        if clear_role:
            changes["role_id"] = None
        elif role_id is not None:
            changes["role_id"] = role_id
        # Parsed now (bad input is refused before anything waits); combined with the stored window below.
        new_start = parse_local_datetime(starts, state.tz, end_of_day=False, what="starts") if starts else None
        new_end = parse_local_datetime(ends, state.tz, end_of_day=True, what="ends") if ends else None
        window_changed = clear_window or starts is not None or ends is not None
        if not changes and not window_changed:
            raise UserFacingError("Nothing to change: give at least one option to edit.")

        def edited(stored: Achievement) -> Achievement:
            updated = replace(stored, **changes)
            if window_changed:
                keep_start, keep_end = (None, None) if clear_window else (stored.starts, stored.ends)
                start_at, end_at = new_start or keep_start, new_end or keep_end
                if start_at and end_at and end_at <= start_at:
                    raise UserFacingError("`ends` must be after `starts`.")
                updated = replace(updated, starts=start_at, ends=end_at)
            return updated

        preview = await self._preview(guild_id, edited(current))
        shown = [*changes, *(("starts", "ends") if window_changed else ())]
        async with self.recorder.bulk_change(guild_id):
            async with self.storage.db.transaction() as conn:
                stored = await self.storage.achievements.get(guild_id, current.id)
                if stored is None:
                    raise UserFacingError(self._gone(current))
                updated = edited(stored)
                if "name" in changes:  # again inside the transaction, against a concurrent add or rename
                    await self._check_name_free(guild_id, updated.name, except_id=current.id)
                if not await self.storage.achievements.update(conn, guild_id, updated, self.clock.now()):
                    raise UserFacingError(self._gone(current))
                await self.scheduler.record_retroactive(conn, guild_id, [updated])
                if updated.points != stored.points:
                    await self.storage.achievements.start_job(conn, guild_id, updated.id, "repoint", updated.points,
                                                              self.clock.now())
                detail = ", ".join(
                    f"{k}={getattr(updated, k).text if k == 'condition' else getattr(updated, k)}" for k in shown
                )
                await self.storage.audit.add(conn, guild_id, actor_id, "achievement.edit", f"{updated.id}: {detail}",
                                             self.clock.now())
            await self._finish_job(guild_id, updated.id)
        preview = replace(preview, achievement=updated)
        await self.recorder.reload_guild(guild_id)
        await self.scheduler.start_retroactive(guild_id, [updated])
        return preview

    @staticmethod
    def _gone(achievement: Achievement) -> str:
        return f"There is no achievement `{achievement.id}` any more: it was removed meanwhile. Nothing was changed."

    async def _finish_job(self, guild_id: int, achievement_id: str) -> int:
        """Settle a recorded bulk job's holders chunk by chunk, each chunk its own transaction that records
        how far it got, so other guilds commit in between and a restart resumes where it stopped.
        Call inside the guild's bulk_change. Returns how many holders it settled."""
        settled = 0
        while True:
            async with self.storage.db.transaction() as conn:
                job = await self.storage.achievements.job(guild_id, achievement_id)
                done = None if job is None else await self.storage.achievements.run_job_chunk(
                    conn, job, self.bulk_chunk)
            if done is None:
                return settled
            settled += done
            await asyncio.sleep(0)  # let other writers take the lock between chunks

    async def resume_bulk_jobs(self) -> int:
        """At start: finish the removals and point changes a stop cut off, of the guilds this process owns
        (another shard's are its owner's, which may be running them now). Returns how many it finished."""
        jobs = [job for job in await self.storage.achievements.jobs() if self.ownership.owns(job.guild_id)]
        for job in jobs:
            log.info("guild %s: finishing the %s of achievement %s cut off by a stop", job.guild_id,
                     "removal" if job.kind == "remove" else "points change", job.achievement_id)
            async with self.recorder.bulk_change(job.guild_id):
                await self._finish_job(job.guild_id, job.achievement_id)
        return len(jobs)

    async def removal_impact(self, guild_id: int, achievement_id: str) -> tuple[Achievement, int]:
        achievement = await self.find(guild_id, achievement_id)
        await self.recorder.flush()
        return achievement, await self.storage.members.holders(guild_id, achievement.id)

    async def remove_achievement(self, guild_id: int, actor_id: int, achievement_id: str) -> int:
        """Delete an achievement; members who earned it lose it and its points. Returns how many did.

        The achievement goes in the first transaction, with a job record; its holders are then settled
        in chunks (see _finish_job), the guild's activity waiting until the last one is done."""
        achievement = await self.find(guild_id, achievement_id)
        async with self.recorder.bulk_change(guild_id):
            async with self.storage.db.transaction() as conn:
                if not await self.storage.achievements.delete(conn, guild_id, achievement.id):
                    raise UserFacingError(self._gone(achievement))
                holders = await self.storage.members.holders(guild_id, achievement.id)
                await self.storage.achievements.start_job(conn, guild_id, achievement.id, "remove", 0,
                                                          self.clock.now())
                await self.storage.audit.add(conn, guild_id, actor_id, "achievement.remove",
                                             f"{achievement.id}: {achievement.name}; taken from {holders} members",
                                             self.clock.now())
            await self._finish_job(guild_id, achievement.id)
        await self.recorder.reload_guild(guild_id)
        return holders

    async def grant(self, guild_id: int, actor_id: int, member_id: int, achievement_id: str) -> RecordResult:
        achievement = await self.find(guild_id, achievement_id)
        result = await self.recorder.grant(guild_id, member_id, achievement.id)
        if not result.counted:
            raise UserFacingError(f"<@{member_id}> already has **{achievement.name}**.")
        await self.recorder.flush()
        await self._audit(guild_id, actor_id, "achievement.grant", f"{achievement.id} to {member_id}")
        return result

    async def revoke(self, guild_id: int, actor_id: int, member_id: int, achievement_id: str) -> Achievement:
        achievement = await self.find(guild_id, achievement_id)
        if not await self.recorder.revoke(guild_id, member_id, achievement.id, achievement.points):
            raise UserFacingError(f"<@{member_id}> does not have **{achievement.name}**.")
        await self.recorder.flush()
        await self._audit(guild_id, actor_id, "achievement.revoke", f"{achievement.id} from {member_id}")
        return achievement

    def _check_points(self, points: int) -> None:
        if not MIN_POINTS <= points <= MAX_POINTS:
            raise UserFacingError(f"Points must be between {MIN_POINTS} and {MAX_POINTS:,}, not {points}.")

    def _window(
        self, tz: ZoneInfo, starts: str | None, ends: str | None, *,
        keep_start: datetime | None = None, keep_end: datetime | None = None,
    ) -> tuple[datetime | None, datetime | None]:
        start_at = parse_local_datetime(starts, tz, end_of_day=False, what="starts") if starts else keep_start
        end_at = parse_local_datetime(ends, tz, end_of_day=True, what="ends") if ends else keep_end
        if start_at and end_at and end_at <= start_at:
            raise UserFacingError("`ends` must be after `starts`.")
        return start_at, end_at

    async def _check_room(self, guild_id: int) -> None:
        if await self.storage.achievements.count(guild_id) >= MAX_ACHIEVEMENTS:
            raise UserFacingError(
                f"A server can have at most {MAX_ACHIEVEMENTS} achievements; remove one with "
                "`/achievement remove` first."
            )

    async def _check_name_free(self, guild_id: int, name: str, except_id: str | None = None) -> None:
        if await self.storage.achievements.name_taken(guild_id, name, except_id=except_id):
            raise UserFacingError(f"An achievement named **{name}** already exists; pick another name or edit it.")

    async def _free_id(self, guild_id: int, name: str) -> str:
        base = slugify(name) or "achievement"
        candidate, n = base, 2
        while await self.storage.achievements.id_taken(guild_id, candidate):
            candidate = f"{base[:36]}-{n}"
            n += 1
        return candidate

    async def _preview(self, guild_id: int, achievement: Achievement) -> AchievementPreview:
        """How many stored members meet it now, and the two classic mistakes: too easy, too hard."""
        await self.recorder.flush()
        members = await self.storage.members.count(guild_id)
        meeting = 0
        after = 0
        while rows := await self.storage.members.load_chunk(guild_id, after, 2000):
            meeting += sum(1 for _, stats, _ in rows if achievement.condition.evaluate(stats.values, None))
            after = rows[-1][0]
        warnings: list[str] = []
        condition = achievement.condition
        always = all(condition.evaluate({}, hour) for hour in range(24))
        if always:
            warnings.append("⚠️ Too easy: this condition is true for everyone, even a member who has done nothing.")
        elif members and meeting >= members:
            warnings.append(f"⚠️ Too easy: all {members} members with activity already meet it.")
        for threshold in condition.thresholds():
            if threshold.op not in (">=", ">", "=="):
                continue
            best = await self.storage.members.max_stat(guild_id, threshold.stat)
            if best and threshold.value > best * TOO_HARD_FACTOR:
                warnings.append(
                    f"⚠️ Maybe too hard: {threshold.stat} {threshold.op} {threshold.value:,} is over "
                    f"{TOO_HARD_FACTOR}× the most active member's {best:,}."
                )
        return AchievementPreview(achievement, meeting, members, warnings)

    # ------------------------------------------------------------------ stats
    async def add_stat(self, guild_id: int, actor_id: int, member_id: int, stat: str, amount: int) -> RecordResult:
        stat = stat.strip().lower()
        if stat in AUTOMATIC_STATS:
            raise UserFacingError(
                f"`{stat}` is counted by the bot itself. Award a custom stat instead, such as `tasks_completed`."
            )
        if not CUSTOM_STAT.match(stat):
            raise UserFacingError(
                "A stat name uses lowercase letters, digits and `_`, starts with a letter and has at most 32 "
                f"characters (like `lessons_finished`), not `{stat[:40]}`."
            )
        await self.parse(guild_id, f"{stat} >= 1")  # refuses a likely typo of a built-in stat
        if not 1 <= amount <= MAX_STAT_AMOUNT:
            raise UserFacingError(f"The amount must be between 1 and {MAX_STAT_AMOUNT:,}, not {amount}.")
        result = await self.recorder.record(Activity(
            guild_id, member_id, ActivityKind.CUSTOM, self.clock.now(), stat=stat, amount=amount,
            counts_as_active=False,
        ))
        await self.recorder.flush()
        await self._audit(guild_id, actor_id, "stat.add", f"{stat} +{amount} to {member_id}")
        return result

    # ------------------------------------------------------------------ settings
    async def update_settings(self, guild_id: int, actor_id: int, **changes: object) -> None:
        await self.recorder.guild(guild_id)
        if "timezone" in changes:
            changes["timezone"] = check_timezone(str(changes["timezone"]))
        cooldown = changes.get("anti_spam_cooldown")
        if isinstance(cooldown, int) and not 0 <= cooldown <= MAX_COOLDOWN:
            raise UserFacingError(f"The cooldown must be between 0 and {MAX_COOLDOWN} seconds.")
        min_length = changes.get("anti_spam_min_length")
        if isinstance(min_length, int) and not 0 <= min_length <= MAX_MIN_LENGTH:
            raise UserFacingError(f"The minimum length must be between 0 and {MAX_MIN_LENGTH} characters.")
        detail = ", ".join(f"{k}={v}" for k, v in changes.items())
        async with self.storage.db.transaction() as conn:
            await self.storage.guilds.update(conn, guild_id, **changes)
            await self.storage.audit.add(conn, guild_id, actor_id, "settings", detail, self.clock.now())
        state = await self.recorder.reload_guild(guild_id)
        if "timezone" in changes:
            self.scheduler.schedule_guild(guild_id, state.settings.timezone)

    async def set_tier(self, guild_id: int, actor_id: int, name: str, points: int, badge: str,
                       role_id: int | None = None) -> tuple[Tier, list[Tier]]:
        """Add a tier, or replace the ones with the same name or threshold. Returns it and those it replaced."""
        name = _check_name(name, "tier name", MAX_TIER_NAME)
        badge = _check_text(badge, "badge", MAX_BADGE)
        if not 0 <= points <= MAX_TIER_POINTS:
            raise UserFacingError(f"A tier's points must be between 0 and {MAX_TIER_POINTS:,}.")
        await self.recorder.guild(guild_id)
        tier = Tier(name, points, badge, role_id)
        async with self.storage.db.transaction() as conn:
            # Checked against the stored tiers inside the write transaction: two moderators' commands
            # cannot both see 19 tiers and both add one.
            tiers = await self.storage.tiers.stored(conn, guild_id)
            replaced = [t for t in tiers if name_key(t.name) == name_key(name) or t.points == points]
            if len(tiers) - len(replaced) + 1 > MAX_TIERS:
                raise UserFacingError(
                    f"A server can have at most {MAX_TIERS} tiers; remove one with `/tier remove` first."
                )
            await self.storage.tiers.upsert(conn, guild_id, tier)
            await self.storage.audit.add(conn, guild_id, actor_id, "tier.set", f"{badge} {name} at {points}",
                                         self.clock.now())
        await self.recorder.reload_guild(guild_id)
        return tier, replaced

    async def remove_tier(self, guild_id: int, actor_id: int, name: str) -> None:
        await self.recorder.guild(guild_id)
        async with self.storage.db.transaction() as conn:
            tiers = await self.storage.tiers.stored(conn, guild_id)
            if not any(name_key(t.name) == name_key(name) for t in tiers):
                raise UserFacingError(f"There is no tier named `{name[:40]}`.")
            if len(tiers) <= 1:
                raise UserFacingError("A server needs at least one tier; change it with `/tier set` instead.")
            await self.storage.tiers.remove(conn, guild_id, name)
            await self.storage.audit.add(conn, guild_id, actor_id, "tier.remove", name, self.clock.now())
        await self.recorder.reload_guild(guild_id)

    async def reset_member(self, guild_id: int, actor_id: int, member_id: int) -> bool:
        async with self.recorder.paused(guild_id) as conn:
            existed = await self.storage.members.delete_member(conn, guild_id, member_id)
            await self.storage.audit.add(conn, guild_id, actor_id, "member.reset", str(member_id), self.clock.now())
        return existed

    async def export(self, guild_id: int, format: ExportFormat, upload_limit: int | None = None) -> ExportFile:
        """The guild's data in a temporary file (the caller discards it), streamed page by page; raises
        ExportTooLarge as soon as it outgrows `upload_limit`."""
        await self.recorder.flush()
        state = await self.recorder.guild(guild_id)
        header = {
            "guild_id": guild_id,
            "exported_at": self.clock.now().isoformat(),
            "settings": {
                "timezone": state.settings.timezone, "announce_channel_id": state.settings.announce_channel_id,
                "anti_spam_cooldown": state.settings.anti_spam_cooldown,
                "anti_spam_min_length": state.settings.anti_spam_min_length,
            },
            "tiers": [
                {"name": t.name, "points": t.points, "badge": t.badge, "role_id": t.role_id} for t in state.tiers
            ],
            "achievements": [
                {"id": a.id, "name": a.name, "description": a.description, "points": a.points,
                 "condition": a.condition.text, "hidden": a.hidden, "role_id": a.role_id,
                 "starts": a.starts.isoformat() if a.starts else None, "ends": a.ends.isoformat() if a.ends else None}
                for a in state.rulebook.achievements
            ],
        }
        return await write_export(header, self.storage.members.export(guild_id), format, guild_id, upload_limit)
