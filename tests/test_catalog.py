"""The catalog is the track document's event table, as data."""

from __future__ import annotations

from gateway.catalog import AD_TYPES, PAIRS, REQUIRED, ad_data


def test_thirty_five_valid_pairs() -> None:
    # track doc: 5 SP + 7 banner + 7 shoppable display + 8 video + 4 + 4 item events
    counts = {ad.name: len(ad.events) for ad in AD_TYPES}
    assert counts == {
        "sponsored_product": 5, "display_banner": 7, "shoppable_display": 7,
        "shoppable_video": 8, "shoppable_display_item": 4, "shoppable_video_item": 4,
    }
    assert len(PAIRS) == 35


def test_video_viewable_only_with_shoppable_video() -> None:
    allowed = {ad for name, ad in PAIRS if name == "ian.display.viewport_video_viewable"}
    assert allowed == {"shoppable_video"}


def test_sponsored_product_names_only_with_sponsored_product_data() -> None:
    allowed = {ad for name, ad in PAIRS if name.startswith("ian.sponsored_product.")}
    assert allowed == {"sponsored_product"}


def test_required_fields_follow_the_document() -> None:
    assert REQUIRED[("ian.display.click_creative", "display_banner")] == (
        "event_id", "interaction_id")
    assert REQUIRED[("ian.display.add_creative_item", "shoppable_video_item")] == (
        "event_id", "interaction_id", "product_id")
    assert REQUIRED[("ian.display.viewport_viewable_creative_asset", "shoppable_display")] == (
        "event_id", "asset_type")
    assert REQUIRED[("ian.sponsored_product.1px_in_viewport", "sponsored_product")] == (
        "event_id",)
    # track doc: the sponsored-product object has no interaction_id; item views need none
    assert REQUIRED[("ian.sponsored_product.clicked", "sponsored_product")] == ("event_id",)
    assert REQUIRED[("ian.display.viewport_1px_creative_item", "shoppable_display_item")] == (
        "event_id", "product_id")


def test_ad_data_needs_exactly_one_known_object() -> None:
    assert ad_data({"data": {}}) is None
    assert ad_data({"data": {"brand_page_data": {}}}) is None
    assert ad_data({"data": {"display_banner_data": {}, "sponsored_product_data": {}}}) is None
    assert ad_data({"data": {"display_banner_data": "x"}}) is None
    found = ad_data({"data": {"display_banner_data": {"a": 1}, "unknown": 2}})
    assert found is not None and found[0].name == "display_banner"
