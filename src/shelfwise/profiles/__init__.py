"""User profiles (affinities, price band, RFM, active hours, lifecycle) and push planning."""

from shelfwise.profiles.profile import ProfileService, ProfileState, UserProfile
from shelfwise.profiles.push import PushConfig, PushPlan, plan_push

__all__ = ["ProfileService", "ProfileState", "PushConfig", "PushPlan", "UserProfile", "plan_push"]
