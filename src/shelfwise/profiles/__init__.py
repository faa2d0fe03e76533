"""User profiles (affinities, price band, RFM, active hours, lifecycle) and push planning."""

from shelfwise.profiles.profile import ProfileService, ProfileState, UserProfile

__all__ = ["ProfileService", "ProfileState", "UserProfile"]
