"""Fission campaigns (裂变): 任务宝, 拼团, 助力, 砍价, 送券, leaderboards and lotteries."""
