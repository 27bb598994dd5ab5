"""Drives Jukebox's Subsonic API with real clients from PyPI and prints what they saw as
one JSON object, which the Rust test (tests/subsonic/clients.rs) checks.

usage: clients.py <client> <port> <username> <secret> <page size>
  client: opensonic-apikey | opensonic-token | opensonic-get | pysonic
          | annotate-opensonic | annotate-pysonic (stars and plays, issue 19)
usage: clients.py <client>-playlists <port> <username> <secret> <song id,song id,song id>
  playlists (issue 19): create, update (add and remove), replace to reorder, delete
usage: clients.py queue-<opensonic|pysonic> <port> <username> <secret> <song ids, comma-separated>
  saves the songs as the play queue (the second one current, at 61,500 ms), reads it
  back, then tries to save an id that is no song of the user's.
"""

import hashlib
import json
import sys
import time


def opensonic(mode, port, username, secret):
    import libopensonic

    common = dict(port=port, app_name=f"py-opensonic-{mode}")
    if mode == "apikey":
        return libopensonic.Connection("http://127.0.0.1", api_key=secret, **common)
    return libopensonic.Connection(
        "http://127.0.0.1", username=username, password=secret, use_get=(mode == "get"), **common
    )


def run_opensonic(mode, port, username, secret, page):
    import asyncio

    conn = opensonic(mode, port, username, secret)

    def run(awaitable):
        # The sync client's responses belong to its private event loop.
        return asyncio.run_coroutine_threadsafe(awaitable, conn._loop).result()

    try:
        seen = {"ping": conn.ping()}
        # Browse: artist -> album -> song.
        index = conn.get_artists().index or []
        seen["artists"] = [a.name for i in index for a in (i.artist or [])]
        artist = conn.get_artist(index[0].artist[0].id)
        seen["albums"] = sorted(a.name for a in (artist.album or []))
        album = conn.get_album(artist.album[0].id)
        seen["album_songs"] = [s.id for s in (album.song or [])]
        seen["newest"] = [a.name for a in conn.get_album_list2("newest", size=10)]
        # A full sync as Symfonium does it: an empty query, page after page.
        songs, offset, pages = [], 0, 0
        while True:
            result = conn.search3("", artist_count=0, album_count=0, song_count=page, song_offset=offset)
            batch = result.song or []
            pages += 1
            songs += batch
            offset += len(batch)
            if len(batch) < page:
                break
        seen["pages"] = pages
        seen["songs"] = [{"id": s.id, "title": s.title, "artist": s.artist, "size": s.size,
                          "duration": s.duration, "coverArt": s.cover_art} for s in songs]
        first = songs[0].id
        seen["song_title"] = conn.get_song(first).title
        response = conn.stream(first, byte_range="bytes=10-99")
        seen["range_status"] = response.status
        seen["range_bytes"] = run(response.read()).hex()
        seen["content_range"] = response.headers.get("Content-Range")
        whole = run(conn.stream(first).read())
        seen["stream_sha256"] = hashlib.sha256(whole).hexdigest()
        seen["stream_len"] = len(whole)
        covered = next((s for s in songs if s.cover_art), None)
        if covered:
            picture = conn.get_cover_art(covered.cover_art, size=300)
            seen["cover_type"] = picture.headers.get("Content-Type")
            seen["cover_sha256"] = hashlib.sha256(run(picture.read())).hexdigest()
        return seen
    finally:
        conn.cleanup()


def run_pysonic(port, username, secret, page):
    import libsonic

    # Its default: form POST with token auth (its GET mode is broken in this release).
    conn = libsonic.Connection("http://127.0.0.1", username, secret, port=port,
                               serverPath="rest", appName="py-sonic")
    seen = {"ping": conn.ping()}
    index = conn.getArtists()["artists"]["index"]
    seen["artists"] = [a["name"] for i in index for a in i.get("artist", [])]
    artist = conn.getArtist(index[0]["artist"][0]["id"])["artist"]
    seen["albums"] = sorted(a["name"] for a in artist.get("album", []))
    album = conn.getAlbum(artist["album"][0]["id"])["album"]
    seen["album_songs"] = [s["id"] for s in album.get("song", [])]
    seen["newest"] = [a["name"] for a in conn.getAlbumList2("newest", size=10)["albumList2"]["album"]]
    songs, offset, pages = [], 0, 0
    while True:
        result = conn.search3("", artistCount=0, albumCount=0, songCount=page, songOffset=offset)
        batch = result["searchResult3"].get("song", [])
        pages += 1
        songs += batch
        offset += len(batch)
        if len(batch) < page:
            break
    seen["pages"] = pages
    seen["songs"] = [{"id": s["id"], "title": s["title"], "artist": s.get("artist"), "size": s.get("size"),
                      "duration": s.get("duration"), "coverArt": s.get("coverArt")} for s in songs]
    first = songs[0]["id"]
    seen["song_title"] = conn.getSong(first)["song"]["title"]
    whole = conn.stream(first).read()
    seen["stream_sha256"] = hashlib.sha256(whole).hexdigest()
    seen["stream_len"] = len(whole)
    covered = next((s for s in songs if s.get("coverArt")), None)
    if covered:
        picture = conn.getCoverArt(covered["coverArt"], size=300)
        seen["cover_type"] = picture.headers.get("Content-Type")
        seen["cover_sha256"] = hashlib.sha256(picture.read()).hexdigest()
    return seen


def run_annotate_opensonic(port, username, secret):
    conn = opensonic("token", port, username, secret)
    try:
        songs = sorted(conn.search3("", artist_count=0, album_count=0, song_count=50).song or [],
                       key=lambda s: s.title)
        first, second = songs[0], songs[1]
        seen = {"songs": [s.id for s in songs]}
        conn.star(sids=[first.id], album_ids=[second.album_id])
        starred = conn.get_starred2()
        seen["starred_songs"] = [s.id for s in (starred.song or [])]
        seen["starred_albums"] = [a.name for a in (starred.album or [])]
        seen["starred_song_flag"] = bool(conn.get_song(first.id).starred)
        when = int(time.time()) - 3600
        # A retried scrobble (same song, same time) counts once.
        conn.scrobble(first.id, listen_time=when)
        conn.scrobble(first.id, listen_time=when)
        conn.scrobble(first.id, listen_time=when + 5)
        conn.scrobble(second.id, listen_time=when + 10)
        seen["play_counts"] = [conn.get_song(s.id).play_count for s in (first, second)]
        seen["recent"] = [a.name for a in conn.get_album_list2("recent", size=10)]
        seen["frequent"] = [a.name for a in conn.get_album_list2("frequent", size=10)]
        conn.unstar(sids=[first.id])
        after = conn.get_starred2()
        seen["starred_songs_after"] = [s.id for s in (after.song or [])]
        conn.scrobble(second.id, submission=False)
        seen["now_playing"] = [e.id for e in conn.get_now_playing()]
        return seen
    finally:
        conn.cleanup()


def run_annotate_pysonic(port, username, secret):
    import libsonic

    conn = libsonic.Connection("http://127.0.0.1", username, secret, port=port,
                               serverPath="rest", appName="py-sonic")
    songs = sorted(conn.search3("", artistCount=0, albumCount=0, songCount=50)["searchResult3"]["song"],
                   key=lambda s: s["title"])
    first, second = songs[0], songs[1]
    seen = {"songs": [s["id"] for s in songs]}
    conn.star(sids=[first["id"]], albumIds=[second["albumId"]])
    starred = conn.getStarred2()["starred2"]
    seen["starred_songs"] = [s["id"] for s in starred.get("song", [])]
    seen["starred_albums"] = [a["name"] for a in starred.get("album", [])]
    seen["starred_song_flag"] = "starred" in conn.getSong(first["id"])["song"]
    when = int(time.time()) - 3600
    conn.scrobble(first["id"], listenTime=when)
    conn.scrobble(first["id"], listenTime=when)
    conn.scrobble(first["id"], listenTime=when + 5)
    conn.scrobble(second["id"], listenTime=when + 10)
    seen["play_counts"] = [conn.getSong(s["id"])["song"].get("playCount") for s in (first, second)]
    seen["recent"] = [a["name"] for a in conn.getAlbumList2("recent", size=10)["albumList2"]["album"]]
    seen["frequent"] = [a["name"] for a in conn.getAlbumList2("frequent", size=10)["albumList2"]["album"]]
    conn.unstar(sids=[first["id"]])
    seen["starred_songs_after"] = [s["id"] for s in conn.getStarred2()["starred2"].get("song", [])]
    conn.scrobble(second["id"], submission=False)
    seen["now_playing"] = [e["id"] for e in conn.getNowPlaying()["nowPlaying"].get("entry", [])]
    return seen


def playlists_opensonic(port, username, secret, songs):
    conn = opensonic("token", port, username, secret)
    a, b, c = songs
    try:
        seen = {"created": conn.create_playlist(name="Road trip", song_ids=[a, b, c])}
        pid = next(p.id for p in conn.get_playlists() if p.name == "Road trip")
        order = lambda: [s.id for s in (conn.get_playlist(pid).entry or [])]
        seen["after_create"] = order()
        conn.update_playlist(pid, comment="for the drive", song_ids_to_add=[a], song_indices_to_remove=[0])
        seen["after_update"] = order()
        seen["comment"] = conn.get_playlist(pid).comment
        conn.create_playlist(playlist_id=pid, song_ids=list(reversed(order())))
        seen["after_replace"] = order()
        seen["deleted"] = conn.delete_playlist(pid)
        seen["left"] = [p.name for p in conn.get_playlists()]
        return seen
    finally:
        conn.cleanup()



def playlists_pysonic(port, username, secret, songs):
    import libsonic

    conn = libsonic.Connection("http://127.0.0.1", username, secret, port=port,
                               serverPath="rest", appName="py-sonic")
    a, b, c = songs
    created = conn.createPlaylist(name="Road trip", songIds=[a, b, c])["playlist"]
    pid = created["id"]
    order = lambda: [s["id"] for s in conn.getPlaylist(pid)["playlist"].get("entry", [])]
    seen = {"created": [s["id"] for s in created.get("entry", [])]}
    seen["listed"] = [p["name"] for p in conn.getPlaylists()["playlists"].get("playlist", [])]
    seen["after_create"] = order()
    conn.updatePlaylist(pid, comment="for the drive", songIdsToAdd=[a], songIndexesToRemove=[0])
    seen["after_update"] = order()
    seen["comment"] = conn.getPlaylist(pid)["playlist"].get("comment")
    conn.createPlaylist(playlistId=pid, songIds=list(reversed(order())))
    seen["after_replace"] = order()
    seen["deleted"] = conn.deletePlaylist(pid)["status"]
    seen["left"] = [p["name"] for p in conn.getPlaylists()["playlists"].get("playlist", [])]
    return seen



def queue_opensonic(port, username, secret, ids):
    conn = opensonic("token", port, username, secret)
    try:
        conn.save_play_queue(ids, current=ids[1], position=61500)
        queue = conn.get_play_queue()
        seen = {"ids": [e.id for e in (queue.entry or [])], "current": queue.current,
                "position": queue.position, "changed_by": queue.changed_by,
                "username": queue.username}
        try:
            conn.save_play_queue(ids + ["yt:not-a-song-of-mine"], current=ids[0])
            seen["bad_id"] = "accepted"
        except Exception as error:  # the client raises its class for the code
            seen["bad_id"] = type(error).__name__
        seen["after_bad"] = [e.id for e in (conn.get_play_queue().entry or [])]
        return seen
    finally:
        conn.cleanup()


def queue_pysonic(port, username, secret, ids):
    import libsonic

    conn = libsonic.Connection("http://127.0.0.1", username, secret, port=port,
                               serverPath="rest", appName="py-sonic")
    conn.savePlayQueue(ids, current=ids[1], position=61500)
    queue = conn.getPlayQueue()["playQueue"]
    seen = {"ids": [e["id"] for e in queue.get("entry", [])], "current": queue.get("current"),
            "position": queue.get("position"), "changed_by": queue.get("changedBy"),
            "username": queue.get("username")}
    try:
        conn.savePlayQueue(ids + ["yt:not-a-song-of-mine"], current=ids[0])
        seen["bad_id"] = "accepted"
    except Exception as error:
        seen["bad_id"] = type(error).__name__
    seen["after_bad"] = [e["id"] for e in conn.getPlayQueue()["playQueue"].get("entry", [])]
    return seen


def main():
    client, port, username, secret, page = sys.argv[1:6]
    if client.endswith("-playlists"):
        songs = page.split(",")
        if client.startswith("pysonic"):
            seen = playlists_pysonic(int(port), username, secret, songs)
        else:
            seen = playlists_opensonic(int(port), username, secret, songs)
        print(json.dumps(seen))
        return
    if client.startswith("queue-"):
        ids = page.split(",")
        run = queue_pysonic if client == "queue-pysonic" else queue_opensonic
        print(json.dumps(run(int(port), username, secret, ids)))
        return
    port, page = int(port), int(page)
    if client == "annotate-opensonic":
        seen = run_annotate_opensonic(port, username, secret)
    elif client == "annotate-pysonic":
        seen = run_annotate_pysonic(port, username, secret)
    elif client == "pysonic":
        seen = run_pysonic(port, username, secret, page)
    else:
        seen = run_opensonic(client.split("-", 1)[1], port, username, secret, page)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
