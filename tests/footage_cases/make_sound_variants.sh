#!/usr/bin/env bash
# make_sound_variants.sh OUT_DIR: clips of the sound kinds of issue 8 beyond make_cases.sh
# (other containers, other track layouts). Truth in sound_variants.json beside this script.
# Needs ffmpeg (Debian 12's 5.1, with libx264 and libopus) and espeak-ng.
#
# The speech is two sentences with a long pause between them, so each lands clearly in one
# shot: sentence 1 ("Welcome to the footage logging test.") from 0.5 s to about 2.7 s of the
# audio, sentence 2 ("The quick brown fox jumps over the lazy dog.") from 4.2 s to about 7.2 s.
set -euo pipefail
OUT="${1:?usage: make_sound_variants.sh OUT_DIR}"
mkdir -p "$OUT"
cd "$OUT"

FF=(ffmpeg -hide_banner -loglevel error -nostdin -y)
X264=(-c:v libx264 -preset veryfast -crf 28 -pix_fmt yuv420p -threads 1)
MUX=(-fflags +bitexact -flags:v +bitexact -flags:a +bitexact)
A="testsrc=size=320x240"
B="smptebars=size=320x240"
# A noise floor under the speech, as every real microphone has (and pocketsphinx expects).
FLOOR="anoisesrc=color=white:amplitude=0.004:seed=11:sample_rate=16000"

espeak-ng -v en-us -s 150 -w one_raw.wav "Welcome to the footage logging test."
espeak-ng -v en-us -s 150 -w two_raw.wav "The quick brown fox jumps over the lazy dog."
# sentence1.wav / sentence2.wav: each sentence alone at its place in the 8 s timeline;
# speech.wav: both. All 16 kHz mono s16 over the same noise floor.
"${FF[@]}" -i one_raw.wav -i two_raw.wav -f lavfi -i "$FLOOR" -f lavfi -i "$FLOOR" -f lavfi -i "$FLOOR" \
  -filter_complex "[0:a]aresample=16000,adelay=500:all=1,apad=whole_dur=8,asplit[o1][o2];\
[1:a]aresample=16000,adelay=4200:all=1,apad=whole_dur=8,asplit[t1][t2];\
[o1][2:a]amix=inputs=2:duration=first:normalize=0,aformat=sample_fmts=s16:channel_layouts=mono[s1];\
[t1][3:a]amix=inputs=2:duration=first:normalize=0,aformat=sample_fmts=s16:channel_layouts=mono[s2];\
[o2][t2][4:a]amix=inputs=3:duration=first:normalize=0,aformat=sample_fmts=s16:channel_layouts=mono[s]" \
  -map "[s1]" "${MUX[@]}" sentence1.wav -map "[s2]" "${MUX[@]}" sentence2.wav -map "[s]" "${MUX[@]}" speech.wav
rm -f one_raw.wav two_raw.wav

# Picture for the late-audio clips: 10 s, hard cut at 5.5 s.
LATE_V=(-f lavfi -i "$A:rate=25,trim=duration=5.5" -f lavfi -i "$B:rate=25,trim=duration=4.5")
LATE_F="[0:v][1:v]concat=n=2:v=1:a=0[v]"

# late_audio.*: the audio track starts 2.0 s after the picture (a recorder started late, or
# sound synced in an edit). Sentence 1 is heard 2.5-4.7 s (shot 0), sentence 2 6.2-9.2 s
# (shot 1); read without the offset, sentence 2 would start in shot 0.
"${FF[@]}" "${LATE_V[@]}" -itsoffset 2 -i speech.wav -filter_complex "$LATE_F" -map "[v]" -map 2:a \
  "${X264[@]}" -c:a aac -b:a 64k "${MUX[@]}" late_audio.mov
"${FF[@]}" "${LATE_V[@]}" -itsoffset 2 -i speech.wav -filter_complex "$LATE_F" -map "[v]" -map 2:a \
  "${X264[@]}" -c:a libopus -b:a 32k "${MUX[@]}" late_audio.mkv
"${FF[@]}" "${LATE_V[@]}" -itsoffset 2 -i speech.wav -filter_complex "$LATE_F" -map "[v]" -map 2:a \
  "${X264[@]}" -c:a ac3 -b:a 96k -ar 48000 "${MUX[@]}" -f mpegts late_audio.ts

# tone_noise_speech.mkv: three mono tracks, 8 s, cut at 4 s: line-up tone (1 kHz), a loud
# wind-like noise (pink, louder than the speech), and the speech on the third track.
"${FF[@]}" -f lavfi -i "$A:rate=25,trim=duration=4" -f lavfi -i "$B:rate=25,trim=duration=4" \
  -f lavfi -i "sine=frequency=1000:sample_rate=48000:duration=8,volume=0.25" \
  -f lavfi -i "anoisesrc=color=pink:amplitude=0.2:seed=5:sample_rate=48000:duration=8" -i speech.wav \
  -filter_complex "[0:v][1:v]concat=n=2:v=1:a=0[v]" -map "[v]" -map 2:a -map 3:a -map 4:a \
  "${X264[@]}" -c:a flac "${MUX[@]}" tone_noise_speech.mkv

# two_lavs.mov: two radio mics on two mono tracks, each person speaking once: sentence 1 on
# track 1, sentence 2 on track 2. 8 s, cut at 4 s. Only a mix of both tracks hears both.
"${FF[@]}" -f lavfi -i "$A:rate=25,trim=duration=4" -f lavfi -i "$B:rate=25,trim=duration=4" \
  -i sentence1.wav -i sentence2.wav \
  -filter_complex "[0:v][1:v]concat=n=2:v=1:a=0[v]" -map "[v]" -map 2:a -map 3:a \
  "${X264[@]}" -c:a pcm_s16le -ar 48000 "${MUX[@]}" two_lavs.mov

rm -f sentence1.wav sentence2.wav
