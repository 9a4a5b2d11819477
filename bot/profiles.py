"""What /profile, /leaderboard and /achievements show, gathered from the recorder and storage (no Discord)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.clock import Clock
from bot.engine.achievements import Achievement, WindowState
from bot.engine.conditions import Progress
from bot.engine.stats import MemberStats, effective_streak
from bot.engine.tiers import TierProgress, tier_progress
from bot.recording import ActivityRecorder
from bot.storage import Storage
from bot.storage.members import LeaderboardRow

PAGE_SIZE = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AchievementStatus:
    achievement: Achievement
    unlocked_at: datetime | None
    progress: Progress | None  # for locked ones
    window: WindowState


@dataclass(frozen=True, slots=True)
class Profile:
    member_id: int
    stats: MemberStats
    points: int
    streak: int
    best_streak: int
    rank: int | None  # None: unranked (no activity yet, or left the guild)
    members: int
    tier: TierProgress
    nearest: list[AchievementStatus]
    latest: list[AchievementStatus]
    unlocked_count: int
    total_achievements: int


@dataclass(frozen=True, slots=True)
class LeaderboardPage:
    rows: list[LeaderboardRow]
    page: int  # 0-based
    pages: int
    members: int
    caller: LeaderboardRow | None  # the caller's own line, if ranked


class Profiles:
    def __init__(self, storage: Storage, recorder: ActivityRecorder, clock: Clock) -> None:
        self.storage = storage
        self.recorder = recorder
        self.clock = clock

    async def statuses(self, guild_id: int, member_id: int) -> tuple[MemberStats, list[AchievementStatus]]:
        await self.recorder.flush()  # unlocks still in the recorder's batch would show as locked otherwise
        guild = await self.recorder.guild(guild_id)
        stats, _ = await self.recorder.snapshot(guild_id, member_id)
        unlocks = {u.achievement_id: u.unlocked_at for u in await self.storage.members.unlocks_of(guild_id, member_id)}
        now = self.clock.now()
        # Time-of-day parts have no partial progress: they count as met only if the hour is right now.
        hour = now.astimezone(guild.tz).hour
        result = []
        for achievement in guild.rulebook.achievements:
            at = unlocks.get(achievement.id)
            progress = None if at else achievement.condition.progress(stats.values, hour)
            result.append(AchievementStatus(achievement, at, progress, achievement.window(now)))
        return stats, result

    async def profile(self, guild_id: int, member_id: int) -> Profile:
        await self.recorder.flush()  # so rank and unlock dates include the member's latest activity
        guild = await self.recorder.guild(guild_id)
        stats, statuses = await self.statuses(guild_id, member_id)
        points = stats.get("points")
        standing = await self.storage.members.standing(guild_id, member_id, points)  # one round trip
        members, rank = standing.members, standing.rank
        today = self.clock.now().astimezone(guild.tz).date()
        locked = [
            s for s in statuses
            if s.unlocked_at is None and not s.achievement.hidden
            and s.window in (WindowState.ALWAYS, WindowState.OPEN) and s.progress is not None
            and s.progress.parts  # a pure time-of-day challenge has no progress to get closer on
        ]
        locked.sort(key=lambda s: (-(s.progress.fraction if s.progress else 0), s.achievement.points))
        unlocked = sorted((s for s in statuses if s.unlocked_at), key=lambda s: s.unlocked_at or _EPOCH, reverse=True)
        return Profile(
            member_id=member_id, stats=stats, points=points,
            streak=effective_streak(stats.get("streak"), stats.last_active, today),
            best_streak=stats.get("best_streak"), rank=rank, members=members,
            tier=tier_progress(points, guild.tiers), nearest=locked[:3], latest=unlocked[:3],
            unlocked_count=len(unlocked), total_achievements=len(statuses),
        )

    async def leaderboard(self, guild_id: int, page: int, caller_id: int) -> LeaderboardPage:
        await self.recorder.flush()
        # Three round trips at most: the caller's stats (none if cached), the member count with the caller's
        # rank, then the page itself.
        stats, _ = await self.recorder.snapshot(guild_id, caller_id)
        points = stats.get("points")
        standing = await self.storage.members.standing(guild_id, caller_id, points)
        members = standing.members
        pages = max(1, -(-members // PAGE_SIZE))
        page = max(0, min(page, pages - 1))
        rows = await self.storage.members.leaderboard_page(guild_id, page * PAGE_SIZE, PAGE_SIZE)
        caller = LeaderboardRow(caller_id, points, standing.rank) if standing.rank is not None else None
        return LeaderboardPage(rows, page, pages, members, caller)

    async def page_of(self, guild_id: int, member_id: int) -> int:
        """The leaderboard page a member is on (0-based). Counting the members tied with them costs more
        than a rank, so it is only done when someone asks to jump there."""
        stats, _ = await self.recorder.snapshot(guild_id, member_id)
        position = await self.storage.members.position_of(guild_id, member_id, stats.get("points"))
        return position // PAGE_SIZE
